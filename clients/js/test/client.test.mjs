// GatewayClient against one real gateway node: admission, events with cursors,
// subscription bookkeeping, heartbeats.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayClient } from '../airavata-client.mjs';
import { Recorder, trackingWebSocket } from './support/recorder.mjs';
import { gatewayBinary, progress, startGateway } from './support/gateway.mjs';

let binary;
let gateway;
let alice;
let service;
const clients = [];

before(async () => {
  binary = await gatewayBinary();
  gateway = await startGateway(binary, { args: ['--ping-interval', '300ms'] });
  [alice, service] = await Promise.all([
    binary.token('alice', { projects: ['proj-1'] }),
    binary.token('producer', { roles: ['service'] }),
  ]);
});

after(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await gateway?.stop();
  await binary?.dispose();
});

function makeClient(options) {
  const WebSocket = trackingWebSocket();
  const client = new GatewayClient({ token: alice, WebSocket, ...options });
  clients.push(client);
  return { client, WebSocket, recorder: new Recorder(client) };
}

const subscribed = (type, id) => (m) =>
  m.type === 'system_status' && m.data?.action === 'subscribed' && m.data.resourceType === type && m.data.resourceId === id;

test('is admitted with a session and receives events with their cursors', { timeout: 20_000 }, async () => {
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws/experiments/exp-1') });
  client.start();
  const connected = await recorder.next('connected');
  assert.equal(connected.resumed, false);
  assert.equal(connected.nodeId, 'node-1');
  assert.match(connected.sessionId, /^[0-9a-f]{32}$/);
  assert.equal(client.sessionId, connected.sessionId);
  assert.equal(client.status, 'connected');
  assert.equal(typeof client.cursor, 'string', 'the connected message of a fresh session carries a cursor');
  const opened = WebSocket.sockets[0].openedWith;
  assert.equal(opened.searchParams.get('token'), alice);
  assert.equal(opened.searchParams.get('session'), null, 'a first connection does not resume');

  const answer = await gateway.publish(service, [
    { type: 'experiment_updated', data: { experiment: { id: 'exp-1', name: 'sweep', status: 'RUNNING', ownerId: 'alice', projectId: 'proj-1' } } },
    { type: 'experiment_progress', data: { experimentId: 'exp-1', completedTasks: 5 } },
    { type: 'experiment_progress', data: { experimentId: 'exp-1', completedTasks: 6 } },
  ]);
  await recorder.until(() => recorder.messages('experiment_updated', 'experiment_progress').length === 3, { what: 'three events' });
  const events = recorder.messages('experiment_updated', 'experiment_progress');
  assert.deepEqual(events.map((e) => e.type), ['experiment_updated', 'experiment_progress', 'experiment_progress']);
  assert.deepEqual(events.map((e) => e.cursor), answer.cursors, 'each event carries the cursor the producer was given');
  assert.deepEqual(events.map((e) => e.id), answer.ids);
  assert.equal(events[1].data.completedTasks, 5);
  assert.equal(client.cursor, answer.cursors.at(-1), 'client.cursor is the last one seen');
  await client.close();
  assert.equal(client.status, 'closed');
  assert.equal(recorder.all('disconnected').length, 0, 'close() ends quietly');
});

test('keeps its explicit subscriptions: sent once admitted, added and removed while connected', { timeout: 20_000 }, async () => {
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws') });
  client.subscribe('experiment', 'exp-2');
  client.start();
  await recorder.next('connected');
  await recorder.next('message', subscribed('experiment', 'exp-2'), { what: 'the answer to the subscription made before start()' });

  client.subscribe('experiment', 'exp-3');
  await recorder.next('message', subscribed('experiment', 'exp-3'));
  client.subscribe('user');
  await recorder.next('message', (m) => m.data?.action === 'subscribed' && m.data.resourceType === 'user');
  assert.deepEqual(client.subscriptions, [
    { resourceType: 'experiment', resourceId: 'exp-2' },
    { resourceType: 'experiment', resourceId: 'exp-3' },
    { resourceType: 'user', resourceId: null },
  ]);

  await gateway.publish(service, [progress('exp-2', 1), progress('exp-3', 2)]);
  await recorder.until(() => recorder.messages('experiment_progress').length === 2, { what: 'events of exp-2 and exp-3' });

  client.unsubscribe('experiment', 'exp-3');
  client.unsubscribe('user');
  await recorder.next('message', (m) => m.data?.action === 'unsubscribed' && m.data.resourceType === 'user');
  // exp-3's event is published first: had it been delivered, it would come before exp-2's.
  await gateway.publish(service, [progress('exp-3', 3), progress('exp-2', 4)]);
  await recorder.until(() => recorder.messages('experiment_progress').length >= 3, { what: "exp-2's second event" });
  assert.deepEqual(recorder.messages('experiment_progress').map((m) => m.data.completedTasks), [1, 2, 4]);
  assert.deepEqual(client.subscriptions, [{ resourceType: 'experiment', resourceId: 'exp-2' }]);
  const requests = WebSocket.sockets[0].sent.map((text) => JSON.parse(text)).filter((m) => m.type === 'system_status');
  assert.deepEqual(requests.map((m) => `${m.data.action} ${m.data.resourceType} ${m.data.resourceId ?? '-'}`), [
    'subscribe experiment exp-2',
    'subscribe experiment exp-3',
    'subscribe user -',
    'unsubscribe experiment exp-3',
    'unsubscribe user -',
  ]);
  await client.close();
});

test('passes subscription errors on and keeps the connection', { timeout: 20_000 }, async () => {
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws') });
  client.start();
  await recorder.next('connected');
  client.subscribe('project', 'proj-2');
  const refused = await recorder.next('message', (m) => m.type === 'error');
  assert.match(refused.error, /proj-2/);
  assert.equal(refused.data?.status, 'error');
  // A close would come after the error: only an answer on the same socket proves it stayed.
  client.subscribe('project', 'proj-1');
  await recorder.next('message', subscribed('project', 'proj-1'), { what: 'the answer to a later subscription' });
  assert.equal(client.status, 'connected');
  assert.equal(WebSocket.sockets.length, 1, 'the same connection answered');
  assert.deepEqual(recorder.all('disconnected'), []);
  await client.close();
});

test('a refused token (1008) is not retried: one attempt, then closed', { timeout: 20_000 }, async () => {
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws'), token: 'not-a-token', initialBackoff: 1 });
  client.start();
  const ended = await recorder.next('disconnected');
  assert.deepEqual(ended, { code: 1008, reason: 'Invalid or expired token', retryIn: null }, 'a refused string token ends the client');
  assert.equal(client.status, 'closed');
  assert.deepEqual(recorder.messages('error').map((m) => m.error), ['Invalid or expired token']);
  assert.equal(WebSocket.sockets.length, 1, 'no second attempt');
  assert.equal(recorder.all('disconnected').length, 1);
});

test('a token function, refused (1008), is asked once for a fresh token: admitted with it', { timeout: 20_000 }, async () => {
  const handed = ['expired.jwt.token', alice];
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws'), token: () => handed.shift(), initialBackoff: 1 });
  client.start();
  const connected = await recorder.next('connected', () => true, { what: 'admission with the fresh token' });
  assert.equal(connected.resumed, false);
  const [refusal] = recorder.all('disconnected');
  assert.equal(refusal.code, 1008);
  assert.equal(typeof refusal.retryIn, 'number', `the refusal schedules one more attempt: ${JSON.stringify(refusal)}`);
  assert.deepEqual(WebSocket.sockets.map((s) => s.openedWith.searchParams.get('token')), ['expired.jwt.token', alice]);
  assert.equal(client.status, 'connected');
  await client.close();
});

test('a token function whose fresh token is refused too: two attempts, then closed', { timeout: 20_000 }, async () => {
  let asked = 0;
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws'), token: async () => `bad-token-${++asked}`, initialBackoff: 1 });
  client.start();
  await recorder.next('disconnected', (d) => d.retryIn === null, { what: 'giving up' });
  assert.deepEqual(recorder.all('disconnected').map((d) => d.code), [1008, 1008]);
  assert.equal(client.status, 'closed');
  assert.equal(asked, 2, 'the token function is asked once more, not again and again');
  assert.equal(WebSocket.sockets.length, 2);
});

test('answers the JSON heartbeat with pongs and is not cut off', { timeout: 20_000 }, async () => {
  const { client, WebSocket, recorder } = makeClient({ url: gateway.url('/ws/user') });
  client.start();
  await recorder.next('connected');
  const socket = WebSocket.sockets[0];
  const pongs = () => socket.sent.filter((text) => JSON.parse(text).type === 'pong').length;
  // The node pings every 300 ms and closes a client silent for two intervals.
  await WebSocket.whenSent(() => pongs() >= 4, { what: 'four pongs' }).catch((error) => {
    throw new Error(`${error.message}, sent ${pongs()}; the client reported:\n${recorder.dump()}`);
  });
  assert.deepEqual(recorder.messages('ping'), [], 'pings are answered, not handed to the application');
  assert.deepEqual(recorder.all('disconnected'), []);
  await client.close();
});
