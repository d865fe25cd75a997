// The React hooks, run by a tiny fake React runtime against a real gateway node.

import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createGatewayHooks } from '../react.mjs';
import { trackingWebSocket } from './support/recorder.mjs';
import { createFakeReact } from './support/fake-react.mjs';
import { gatewayBinary, progress, startGateway } from './support/gateway.mjs';

let binary;
let gateway;
let alice;
let service;

before(async () => {
  binary = await gatewayBinary();
  gateway = await startGateway(binary);
  [alice, service] = await Promise.all([
    binary.token('alice', { projects: ['proj-1'] }),
    binary.token('producer', { roles: ['service'] }),
  ]);
});

// Unmounting closes the clients, even when a test failed half-way.
const views = [];
afterEach(() => {
  for (const view of views.splice(0)) view.unmount();
});

function mount(render, component, props) {
  const view = render(component, props);
  views.push(view);
  return view;
}

after(async () => {
  await gateway?.stop();
  await binary?.dispose();
});

const requests = (socket) =>
  socket.sent.map((text) => JSON.parse(text)).filter((m) => m.data?.action).map((m) => `${m.data.action} ${m.data.resourceId}`);

test('useGatewayClient connects, follows the subscription list, and closes on unmount; useGatewayEvents sees every message', { timeout: 30_000 }, async () => {
  const { React, render } = createFakeReact();
  const { useGatewayClient, useGatewayEvents } = createGatewayHooks(React);
  const WebSocket = trackingWebSocket();
  const seen = [];
  const connections = [];

  function Dashboard({ experimentId, token }) {
    const connection = useGatewayClient({ url: gateway.url('/ws'), token, WebSocket, subscriptions: [['experiment', experimentId]] });
    useGatewayEvents(connection.client, {
      onMessage: (message) => { if (message.type === 'experiment_progress') seen.push(message.data.completedTasks); },
      onConnected: (detail) => connections.push(detail),
    });
    return connection;
  }

  const view = mount(render, Dashboard, { experimentId: 'exp-1', token: () => alice });
  assert.equal(view.result.client, null, 'the first render has no client: it is made in an effect');
  const ready = await view.waitFor((r) => r.status === 'connected', { what: 'status "connected"' });
  const { client } = ready;
  assert.equal(ready.sessionId, client.sessionId);
  assert.equal(ready.nodeId, 'node-1');
  assert.equal(ready.resumed, false);
  assert.equal(connections.length, 1);
  // Conditions on what was sent are re-checked on every send, not on renders.
  await WebSocket.whenSent(() => requests(WebSocket.sockets[0]).length === 1, { what: 'the first subscribe' });
  assert.deepEqual(requests(WebSocket.sockets[0]), ['subscribe exp-1']);

  // Sent is not yet subscribed: events published before the node has the subscription are
  // not this connection's. Wait for the node's answer first.
  await view.waitFor((r) => r.lastMessage?.data?.action === 'subscribed' && r.lastMessage?.data?.resourceId === 'exp-1',
    { what: 'the subscription to exp-1 confirmed' });
  // A burst: React renders fewer times than messages arrive; the events hook sees all.
  await gateway.publish(service, [1, 2, 3].map((n) => progress('exp-1', n)));
  await view.waitFor((r) => r.lastMessage?.data?.completedTasks === 3, { what: 'the last message of the burst' });
  assert.deepEqual(seen, [1, 2, 3]);

  // New props: a new experiment and a new token function. Same client, only the change is sent.
  view.rerender({ experimentId: 'exp-2', token: async () => alice });
  await WebSocket.whenSent(() => requests(WebSocket.sockets[0]).length === 3, { what: 'the subscription change' });
  assert.equal(view.result.client, client, 'no reconnect for new props that do not change the connection');
  assert.deepEqual(requests(WebSocket.sockets[0]), ['subscribe exp-1', 'unsubscribe exp-1', 'subscribe exp-2']);
  assert.deepEqual(client.subscriptions, [{ resourceType: 'experiment', resourceId: 'exp-2' }]);
  await view.waitFor((r) => r.lastMessage?.data?.action === 'subscribed' && r.lastMessage.data.resourceId === 'exp-2',
    { what: "the server's answer to subscribe exp-2" });
  // exp-1's event goes first: had it still been delivered, it would arrive before exp-2's.
  await gateway.publish(service, [progress('exp-1', 4), progress('exp-2', 5)]);
  await view.waitFor((r) => r.lastMessage?.data?.completedTasks === 5, { what: "exp-2's event" });
  assert.deepEqual(seen, [1, 2, 3, 5]);

  view.unmount();
  assert.equal(client.status, 'closed');
  assert.equal(WebSocket.sockets.length, 1);
  await new Promise((resolve, reject) => {
    const socket = WebSocket.sockets[0];
    if (socket.readyState === 3) return resolve();
    const timer = setTimeout(() => reject(new Error('the socket did not close after unmount')), 5000);
    socket.addEventListener('close', () => { clearTimeout(timer); resolve(); });
  });
});

test('useGatewayClient reports recovery failures and reconnection in its state', { timeout: 30_000 }, async () => {
  const { React, render } = createFakeReact();
  const { useGatewayClient } = createGatewayHooks(React);
  const WebSocket = trackingWebSocket();
  const view = mount(render, (props) => useGatewayClient(props), {
    url: gateway.url('/ws/experiments/exp-1'), token: alice, WebSocket, resume: false, initialBackoff: 50,
  });
  const first = await view.waitFor((r) => r.status === 'connected', { what: 'the first connection' });
  WebSocket.sockets[0].close(4000, 'cut by the test');
  await view.waitFor((r) => r.status === 'reconnecting', { what: 'status "reconnecting"' });
  assert.equal(view.result.lastDisconnect.code, 4000);
  const second = await view.waitFor((r) => r.status === 'connected' && r.recoveryFailed !== null, { what: 'the reported loss' });
  assert.deepEqual(second.recoveryFailed, { reason: 'resume_disabled' });
  assert.notEqual(second.sessionId, first.sessionId);
  view.unmount();
  assert.equal(second.client.status, 'closed');
});

test('useGatewayClient with enabled: false does not connect; enabled, it opens exactly one socket', { timeout: 30_000 }, async () => {
  const { React, render } = createFakeReact();
  const { useGatewayClient } = createGatewayHooks(React);
  const disabledSockets = trackingWebSocket();
  const enabledSockets = trackingWebSocket();
  const props = (WebSocket, enabled) => ({ url: gateway.url('/ws/user'), token: alice, WebSocket, enabled });
  const disabled = mount(render, (p) => useGatewayClient(p), props(disabledSockets, false));
  // Control: the same hook, enabled, mounted at the same time. Its admission is a round
  // trip with the node, long after a disabled hook's client would have dialled.
  const enabled = mount(render, (p) => useGatewayClient(p), props(enabledSockets, true));
  await enabled.waitFor((r) => r.status === 'connected', { what: 'the enabled control to connect' });
  assert.equal(enabledSockets.sockets.length, 1, 'the enabled hook opened one socket');
  assert.equal(disabled.result.client, null);
  assert.equal(disabled.result.status, 'idle');
  assert.equal(disabledSockets.sockets.length, 0, 'the disabled hook opened no socket');

  // Turned on, the same component connects, once.
  disabled.rerender(props(disabledSockets, true));
  const connected = await disabled.waitFor((r) => r.status === 'connected', { what: 'the connection once enabled' });
  connected.client.send({ type: 'system_status' });
  await disabled.waitFor((r) => r.lastMessage?.type === 'system_status' && r.lastMessage.data?.totalConnections !== undefined,
    { what: 'the statistics answer' });
  assert.equal(disabledSockets.sockets.length, 1, 'enabled, the hook opened exactly one socket');
});

test('useGatewayClient with a refused string token ends in "closed" after one socket', { timeout: 30_000 }, async () => {
  const { React, render } = createFakeReact();
  const { useGatewayClient } = createGatewayHooks(React);
  const WebSocket = trackingWebSocket();
  // The hook hands the client a function that reads the token prop: a string token that
  // is refused must still not be sent again.
  const view = mount(render, (props) => useGatewayClient(props), { url: gateway.url('/ws'), token: 'not-a-token', WebSocket, initialBackoff: 1 });
  const closed = await view.waitFor((r) => r.status === 'closed', { what: 'status "closed"' });
  assert.equal(closed.lastDisconnect.retryIn, null);
  assert.equal(closed.lastDisconnect.code, 1008);
  assert.equal(WebSocket.sockets.length, 1, 'the refused token was sent once');
});
