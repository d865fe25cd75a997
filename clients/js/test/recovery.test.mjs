// When a session cannot be resumed (unknown session, cursor out of the replay window,
// resume turned off, another user's session), the client says so and restores its
// subscriptions itself. Single nodes without Redis: their sessions live in memory.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayClient } from '../airavata-client.mjs';
import { Recorder, gate, trackingWebSocket } from './support/recorder.mjs';
import { gatewayBinary, progress, startGateway } from './support/gateway.mjs';

let binary;
let gateway; // keeps the smallest replay log allowed, 100 events
let alice;
let bob;
let service;
const clients = [];
const nodes = [];

before(async () => {
  binary = await gatewayBinary();
  gateway = await startGateway(binary, { args: ['--replay-length', '100'] });
  nodes.push(gateway);
  [alice, bob, service] = await Promise.all([
    binary.token('alice', { projects: ['proj-1'] }),
    binary.token('bob'),
    binary.token('producer', { roles: ['service'] }),
  ]);
});

after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await Promise.all(nodes.map((node) => node.stop()));
  await binary?.dispose();
});

function makeClient(options) {
  const WebSocket = trackingWebSocket();
  const client = new GatewayClient({ token: alice, WebSocket, initialBackoff: 100, ...options });
  clients.push(client);
  return { client, WebSocket, recorder: new Recorder(client) };
}

const subscribedTo = (id) => (m) => m.data?.action === 'subscribed' && m.data.resourceId === id;

/** Ends the client's current connection from its side, as a network drop would. */
function cut(WebSocket) {
  WebSocket.sockets.at(-1).close(4000, 'cut by the test');
}

test('an unknown session (the node that held it is gone): recovery_failed, subscriptions sent again', { timeout: 30_000 }, async () => {
  const [first, second] = await Promise.all([
    startGateway(binary, { nodeId: 'lonely-1' }),
    startGateway(binary, { nodeId: 'lonely-2' }),
  ]);
  nodes.push(first, second);
  const { client, WebSocket, recorder } = makeClient({
    urls: [first.url('/ws/experiments/exp-1'), second.url('/ws/experiments/exp-1')],
    restartJitter: 50,
  });
  client.subscribe('experiment', 'exp-2');
  client.start();
  const connected = await recorder.next('connected');
  assert.equal(connected.nodeId, 'lonely-1');
  await recorder.next('message', subscribedTo('exp-2'));

  first.child.signal('SIGTERM');
  const reconnect = await recorder.next('message', (m) => m.data?.action === 'reconnect', { what: 'the drain notice' });
  assert.equal(reconnect.type, 'system_status');
  const disconnected = await recorder.next('disconnected');
  assert.equal(disconnected.code, 1012);
  assert.ok(disconnected.retryIn <= 50, `a restart retries within the jitter, waited ${disconnected.retryIn}`);

  const mark = recorder.length;
  const again = await recorder.next('connected', () => true, { from: mark });
  assert.deepEqual({ nodeId: again.nodeId, resumed: again.resumed }, { nodeId: 'lonely-2', resumed: false });
  assert.notEqual(again.sessionId, connected.sessionId);
  const resumeUrl = WebSocket.sockets[1].openedWith;
  assert.equal(resumeUrl.searchParams.get('session'), connected.sessionId, 'the client asked to resume');
  assert.ok(resumeUrl.searchParams.get('cursor'), 'with its cursor');
  assert.deepEqual(await recorder.next('recovery_failed', () => true, { from: mark }), { reason: 'session_expired' });
  await recorder.next('message', subscribedTo('exp-2'), { from: mark, what: 'exp-2 subscribed again on the new node' });

  await second.publish(service, [progress('exp-1', 1), progress('exp-2', 2)]);
  await recorder.until(() => recorder.messages('experiment_progress').length === 2, { what: 'both events on the new node' });
  assert.deepEqual(recorder.messages('experiment_progress').map((m) => m.data.completedTasks), [1, 2]);
});

test('a cursor that fell out of the replay window: recovery_failed, then live events', { timeout: 30_000 }, async () => {
  let calls = 0;
  const secondAttempt = gate();
  const release = gate();
  const { client, WebSocket, recorder } = makeClient({
    url: gateway.url('/ws/experiments/exp-1'),
    // Holds the reconnect until the test has published more than the window keeps.
    token: async () => {
      calls += 1;
      if (calls > 1) {
        secondAttempt.open();
        await release.promise;
      }
      return alice;
    },
  });
  client.start();
  const connected = await recorder.next('connected');
  cut(WebSocket);
  await secondAttempt.promise;
  // One batch of 150: more than the log keeps.
  await gateway.publish(service, Array.from({ length: 150 }, (_, i) => progress('exp-1', i + 1)));
  const mark = recorder.length;
  release.open();

  const resumed = await recorder.next('connected', () => true, { from: mark });
  assert.deepEqual({ sessionId: resumed.sessionId, resumed: resumed.resumed }, { sessionId: connected.sessionId, resumed: true });
  assert.deepEqual(await recorder.next('recovery_failed', () => true, { from: mark }), { reason: 'cursor_out_of_window' });
  const answer = await gateway.publish(service, [progress('exp-1', 151)]);
  const live = await recorder.next('message', (m) => m.data?.completedTasks === 151, { from: mark, what: 'the live event after the failure' });
  assert.equal(live.cursor, answer.cursors[0]);
  assert.equal(client.cursor, answer.cursors[0]);
});

test('resume turned off: a new session on every connection, reported, subscriptions sent again', { timeout: 30_000 }, async () => {
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws/experiments/exp-1'), resume: false });
  client.subscribe('experiment', 'exp-2');
  client.start();
  const connected = await recorder.next('connected');
  await recorder.next('message', subscribedTo('exp-2'));
  const mark = recorder.length;
  cut(WebSocket);

  const again = await recorder.next('connected', () => true, { from: mark });
  assert.equal(again.resumed, false);
  assert.notEqual(again.sessionId, connected.sessionId);
  assert.equal(WebSocket.sockets[1].openedWith.searchParams.get('session'), null, 'resume off: no session in the URL');
  assert.deepEqual(await recorder.next('recovery_failed', () => true, { from: mark }), { reason: 'resume_disabled' });
  await recorder.next('message', subscribedTo('exp-2'), { from: mark, what: 'exp-2 subscribed again' });
});

test("another user's session is refused (1008); the client then starts a session of its own", { timeout: 30_000 }, async () => {
  let calls = 0;
  // The user signs out and bob signs in while the connection is down.
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws'), token: () => (++calls === 1 ? alice : bob) });
  client.start();
  const connected = await recorder.next('connected');
  const mark = recorder.length;
  cut(WebSocket);

  const refusal = await recorder.next('message', (m) => m.type === 'error', { from: mark, what: 'the refusal' });
  assert.equal(refusal.error, 'Session belongs to another user');
  const closed = await recorder.next('disconnected', (d) => d.code === 1008, { from: mark, what: 'close 1008' });
  assert.equal(closed.reason, 'Session belongs to another user');
  assert.equal(WebSocket.sockets[1].openedWith.searchParams.get('session'), connected.sessionId);

  const fresh = await recorder.next('connected', () => true, { from: mark });
  assert.equal(fresh.resumed, false);
  assert.notEqual(fresh.sessionId, connected.sessionId);
  assert.equal(WebSocket.sockets[2].openedWith.searchParams.get('session'), null, 'the refused session is not tried again');
  assert.deepEqual(await recorder.next('recovery_failed', () => true, { from: mark }), { reason: 'session_refused' });
  assert.equal(recorder.all('connected').length, 2);
});
