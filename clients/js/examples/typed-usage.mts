// A typed use of the package, checked with `tsc --noEmit --strict` in CI (.ci/js-client),
// in a scratch project where the packed tarball is installed: it imports the package by its
// name, as an application would, so that the `exports` map and its `types` are checked too.
// The `@ts-expect-error` lines must stay errors: they prove the declarations refuse what
// the client refuses. typed-react.mts does the same with React's own types.

import {
  EVENTS,
  GatewayClient,
  type ApplicationMessage,
  type ClientMessage,
  type DisconnectedDetail,
  type GatewayEvent,
  type RecoveryFailure,
} from '@airavata/gateway-client';
import { createGatewayHooks, type GatewayConnectionState, type HooksRuntime } from '@airavata/gateway-client/react';

declare function currentAccessToken(): Promise<string>;
declare function refetchExperiment(id: string): void;

const client = new GatewayClient({
  urls: ['wss://gw-1.example.org/ws/experiments/exp-1', 'wss://gw-2.example.org/ws/experiments/exp-1'],
  token: currentAccessToken,
  subscriptions: [['user'], { resourceType: 'task', resourceId: 'task-7' }],
  maxAttempts: null,
});
const bySingleUrl = new GatewayClient('/ws/user', { token: 'a.jwt.token', resume: false, WebSocket: globalThis.WebSocket });

// Narrowing on `type` and `data.action` reaches every member of the protocol's messages.
function describe(message: ApplicationMessage): string {
  switch (message.type) {
    case 'experiment_progress':
      return `${message.data.experimentId}: ${message.data.progressPercent ?? '?'}%`;
    case 'experiment_created':
    case 'experiment_updated':
    case 'experiment_completed':
    case 'experiment_failed':
      return `${message.data.experiment.id} is ${message.data.experiment.status ?? 'unknown'}`;
    case 'task_progress':
      return `${message.data.taskId} at ${message.data.currentStage ?? '?'}`;
    case 'task_created':
    case 'task_updated':
    case 'task_completed':
    case 'task_failed':
      return `${message.data.task.id}${message.data.task.error ? `: ${message.data.task.error}` : ''}`;
    case 'worker_registered':
    case 'worker_updated':
    case 'worker_offline':
      return `worker ${message.data.worker.id}`;
    case 'user_notification':
      return `${message.data.userId}: ${message.data.title ?? ''}`;
    case 'system_status': {
      const data = message.data;
      if (data.action === 'subscribed' || data.action === 'unsubscribed') return `${data.action} ${data.resourceType} ${data.resourceId ?? ''}`;
      if (data.action === 'reconnect') return 'node restarting';
      return `status: ${JSON.stringify(data)}`;
    }
    case 'error':
      return message.data ? `${message.error} (${message.data.action} ${message.data.resourceType})` : message.error;
    case 'pong':
      return 'pong';
  }
}

const cursors: string[] = [];
const remove = client.on('message', (message) => {
  if (message.cursor !== undefined) cursors.push(message.cursor);
  console.log(describe(message));
});
client.on('connected', ({ sessionId, nodeId, resumed }) => console.log(sessionId ?? 'no session', nodeId, resumed));
client.on('replay_complete', ({ replayed }) => console.log(replayed + 1));
client.on('recovery_failed', ({ reason }) => {
  const handled: RecoveryFailure = reason;
  if (handled !== 'resume_disabled') refetchExperiment('exp-1');
});
client.once('disconnected', (detail: DisconnectedDetail) => {
  if (detail.code === 1008 && detail.retryIn === null) console.log('signed out:', detail.reason);
});
remove();

client.subscribe('experiment', 'exp-2');
client.subscribe('system');
client.unsubscribe('task', 'task-7');
const asked: ClientMessage = { type: 'system_status' };
const sent: boolean = client.send(asked) && client.send({ type: 'system_status', data: { action: 'subscribe', resourceType: 'project', resourceId: 'p-1' } });
const status: 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed' = client.start().status;
const closed: Promise<void> = bySingleUrl.close();
console.log(EVENTS.length, sent, status, closed, client.sessionId?.length, client.cursor, client.subscriptions[0]?.resourceId);

const published: GatewayEvent = {
  type: 'task_updated', id: 'task_t-1_1', timestamp: '2026-11-26T17:14:13Z', cursor: '1-0',
  data: { task: { id: 't-1', experimentId: 'exp-1', status: 'RUNNING', workerId: null } },
};
console.log(describe(published));

// @ts-expect-error: an event name the client does not emit
client.on('open', () => {});
// @ts-expect-error: a resource type the protocol does not have
client.subscribe('cluster', 'c-1');
// @ts-expect-error: neither `url` nor `urls`
new GatewayClient({ token: 't' });
// @ts-expect-error: the token is a string or a function returning one
new GatewayClient({ url: 'ws://localhost:8080/ws', token: 42 });
// @ts-expect-error: the client sends only protocol messages
client.send({ type: 'experiment_updated' });
client.on('connected', (detail) => {
  // @ts-expect-error: `connected` has no `cursor`
  console.log(detail.cursor);
});

// The hooks take any runtime with React's hook semantics (the tests use a small fake one).
declare const runtime: HooksRuntime;
const hooks = createGatewayHooks(runtime);
const state: GatewayConnectionState = hooks.useGatewayClient({ url: '/ws', token: () => 'a.jwt.token', enabled: false, subscriptions: [['experiment', 'exp-1']] });
hooks.useGatewayEvents(state.client, { onDisconnected: ({ retryIn }) => console.log(retryIn), onReplayComplete: ({ replayed }) => console.log(replayed) });
if (state.status === 'reconnecting' && state.lastDisconnect !== null) console.log(state.lastDisconnect.code, state.recoveryFailed?.reason);
// @ts-expect-error: a hook status is not the client's ('waiting')
const hookStatus: typeof state.status = 'waiting';
// @ts-expect-error: the hook options still need `url` or `urls`
hooks.useGatewayClient({ token: 't' });
console.log(hookStatus);
