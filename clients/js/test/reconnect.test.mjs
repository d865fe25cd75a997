// The reconnect loop, resume parameters and subscription bookkeeping, against a scripted
// fake socket (fast and deterministic), plus one run against a port nobody listens on.

import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayClient } from '../airavata-client.mjs';
import { Recorder } from './support/recorder.mjs';
import { fakeWebSocket } from './support/fake-socket.mjs';
import { freePort } from './support/gateway.mjs';

const URL_A = 'ws://127.0.0.1:1/ws/experiments/exp-1';

// Every client a test makes, closed after it, so no retry timer outlives the test.
const clients = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

function makeClient(options, more) {
  const client = new GatewayClient(options, more);
  clients.push(client);
  return client;
}

function failEvery(socket) {
  socket.serverClose(1006);
}

test('backs off exponentially with jitter, capped, and gives up after maxAttempts', { timeout: 10_000 }, async () => {
  const WebSocket = fakeWebSocket({ onCreate: failEvery });
  const client = makeClient({ url: URL_A, token: 't', WebSocket, initialBackoff: 40, maxBackoff: 100, maxAttempts: 5 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('disconnected', (d) => d.retryIn === null, { what: 'giving up' });
  const waits = recorder.all('disconnected').map((d) => d.retryIn);
  assert.equal(waits.length, 5, `five attempts, five disconnects: ${JSON.stringify(waits)}`);
  const bounds = [[20, 40], [40, 80], [50, 100], [50, 100]];
  bounds.forEach(([low, high], i) => {
    assert.ok(waits[i] >= low && waits[i] <= high, `wait ${i + 1} should be in [${low}, ${high}] ms, was ${waits[i]}`);
  });
  assert.equal(waits[4], null);
  assert.equal(WebSocket.sockets.length, 5);
  assert.equal(client.status, 'closed');
  assert.deepEqual(recorder.all('disconnected')[0], { code: 1006, reason: 'connection failed', retryIn: waits[0] });
});

test('rotates through urls, asks for a token before every attempt, and a restart (1012) retries within the jitter', { timeout: 10_000 }, async () => {
  let tokens = 0;
  const WebSocket = fakeWebSocket({ onCreate: (socket) => socket.serverClose(1012, 'restart') });
  const client = makeClient({
    urls: ['ws://a.test/ws', 'ws://b.test/ws', 'ws://c.test/ws'],
    token: async () => `token-${++tokens}`,
    WebSocket,
    initialBackoff: 5_000,
    restartJitter: 30,
    maxAttempts: 4,
  });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('disconnected', (d) => d.retryIn === null, { what: 'giving up' });
  assert.deepEqual(WebSocket.sockets.map((s) => s.url.host), ['a.test', 'b.test', 'c.test', 'a.test']);
  assert.deepEqual(WebSocket.sockets.map((s) => s.url.searchParams.get('token')), ['token-1', 'token-2', 'token-3', 'token-4']);
  for (const { retryIn } of recorder.all('disconnected').slice(0, 3)) {
    assert.ok(retryIn >= 0 && retryIn <= 30, `after 1012 the wait is at most the restart jitter, was ${retryIn}`);
  }
});

test('a failing token function counts as a failed attempt', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket();
  const client = makeClient({ url: URL_A, token: () => { throw new Error('signed out'); }, WebSocket, maxAttempts: 1 });
  const recorder = new Recorder(client);
  client.start();
  const disconnected = await recorder.next('disconnected');
  assert.deepEqual(disconnected, { code: null, reason: 'token: signed out', retryIn: null });
  assert.equal(WebSocket.sockets.length, 0);
});

test('an admitted connection resets the attempt count and the backoff', { timeout: 10_000 }, async () => {
  const WebSocket = fakeWebSocket({
    onCreate: (socket, n) => {
      if (n === 1) {
        socket.admit();
        socket.serverClose(1001, 'Ping timeout');
      } else {
        socket.serverClose(1006);
      }
    },
  });
  const client = makeClient({ url: URL_A, token: 't', WebSocket, initialBackoff: 10, maxAttempts: 2 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('disconnected', (d) => d.retryIn === null, { what: 'giving up' });
  assert.equal(WebSocket.sockets.length, 3, 'one admitted connection, then two failed attempts');
  assert.deepEqual(recorder.all('disconnected').map((d) => d.code), [1001, 1006, 1006]);
});

test('resumes with the session and the cursor of the last message that carried one, URL-encoded', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket({
    onCreate: (socket, n) => {
      if (n === 1) {
        socket.admit({ sessionId: 'f'.repeat(32), cursor: '100-0' });
        socket.receive({ type: 'experiment_progress', id: 'e1', timestamp: 't', data: { experimentId: 'exp-1' }, cursor: '100-1' });
        socket.receive({ type: 'system_status', id: 's', timestamp: 't', data: { action: 'subscribed', resourceType: 'experiment', resourceId: 'x' } });
        socket.receive({ type: 'experiment_progress', id: 'e2', timestamp: 't', data: { experimentId: 'exp-1' }, cursor: '100-2 &x=/+' });
        socket.serverClose(1006);
      } else {
        socket.admit({ sessionId: 'f'.repeat(32), resumed: true, cursor: null, subscriptions: [{ resourceType: 'experiment', resourceId: 'exp-1' }] });
        socket.receive({ type: 'system_status', id: 's', timestamp: 't', data: { action: 'replay_complete', replayed: 0 }, cursor: '100-3' });
      }
    },
  });
  const client = makeClient({ url: `${URL_A}?token=stale&keep=1`, token: 'jwt.token.sig', WebSocket, initialBackoff: 1 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('replay_complete');
  const [first, second] = WebSocket.sockets;
  assert.equal(first.url.searchParams.get('session'), null);
  assert.equal(first.url.searchParams.get('token'), 'jwt.token.sig');
  assert.equal(first.url.searchParams.get('keep'), '1');
  assert.equal(second.url.searchParams.get('session'), 'f'.repeat(32));
  assert.equal(second.url.searchParams.get('cursor'), '100-2 &x=/+', `raw query: ${second.url.search}`);
  assert.equal(client.cursor, '100-3');
  assert.deepEqual(recorder.all('connected').map((c) => c.resumed), [false, true]);
  assert.deepEqual(recorder.all('replay_complete'), [{ replayed: 0 }]);
});

test('answers JSON pings with a pong and does not pass them on', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket({ onCreate: (socket) => socket.admit() });
  const client = makeClient({ url: URL_A, token: 't', WebSocket });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('connected');
  WebSocket.sockets[0].receive({ type: 'ping', id: 'ping-1', timestamp: 't' });
  WebSocket.sockets[0].receive({ type: 'experiment_updated', id: 'e', timestamp: 't', data: {} });
  await recorder.next('message');
  assert.deepEqual(WebSocket.sockets[0].sent, [{ type: 'pong' }]);
  assert.deepEqual(recorder.messages().map((m) => m.type), ['experiment_updated']);
  await client.close();
});

test('after a resume, subscribes only to what the server did not restore', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket({
    onCreate: (socket) =>
      socket.admit({
        resumed: true,
        subscriptions: [
          { resourceType: 'experiment', resourceId: 'exp-1' },
          { resourceType: 'user', resourceId: 'alice' },
        ],
      }),
  });
  const client = makeClient({ url: URL_A, token: 't', WebSocket, subscriptions: [['experiment', 'exp-1'], ['user']] });
  client.subscribe('experiment', 'exp-2');
  client.subscribe('system', null);
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('connected');
  assert.deepEqual(WebSocket.sockets[0].sent, [
    { type: 'system_status', data: { action: 'subscribe', resourceType: 'experiment', resourceId: 'exp-2' } },
    { type: 'system_status', data: { action: 'subscribe', resourceType: 'system' } },
  ]);
  client.unsubscribe('experiment', 'exp-2');
  assert.deepEqual(WebSocket.sockets[0].sent.at(-1), {
    type: 'system_status', data: { action: 'unsubscribe', resourceType: 'experiment', resourceId: 'exp-2' },
  });
  assert.deepEqual(client.subscriptions, [
    { resourceType: 'experiment', resourceId: 'exp-1' },
    { resourceType: 'user', resourceId: null },
    { resourceType: 'system', resourceId: null },
  ]);
  await client.close();
});

test('with resume off, a reconnect starts a new session and reports the possible loss', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket({
    onCreate: (socket, n) => {
      socket.admit({ sessionId: String(n).repeat(32) });
      if (n === 1) socket.serverClose(1012);
    },
  });
  const client = makeClient({ url: URL_A, token: 't', WebSocket, resume: false, restartJitter: 0 });
  client.subscribe('experiment', 'exp-2');
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('recovery_failed');
  assert.equal(WebSocket.sockets[1].url.searchParams.get('session'), null);
  assert.deepEqual(recorder.records.map((r) => r.name), ['connected', 'disconnected', 'connected', 'recovery_failed']);
  assert.deepEqual(recorder.all('recovery_failed'), [{ reason: 'resume_disabled' }]);
  assert.equal(WebSocket.sockets[1].sent.length, 1, 'the explicit subscription is sent again');
  await client.close();
});

test('a refused session is dropped, not retried forever', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket({
    onCreate: (socket, n) => {
      if (n === 1) {
        socket.admit({ sessionId: 'a'.repeat(32) });
        socket.serverClose(1006);
      } else if (n === 2) {
        socket.open();
        socket.receive({ type: 'error', id: 'error-1', timestamp: 't', error: 'Session belongs to another user' });
        socket.serverClose(1008, 'Session belongs to another user');
      } else {
        socket.admit({ sessionId: 'b'.repeat(32) });
      }
    },
  });
  const client = makeClient({ url: URL_A, token: 't', WebSocket, initialBackoff: 1 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('recovery_failed');
  assert.equal(WebSocket.sockets[1].url.searchParams.get('session'), 'a'.repeat(32));
  assert.equal(WebSocket.sockets[2].url.searchParams.get('session'), null);
  assert.equal(WebSocket.sockets[2].url.searchParams.get('cursor'), null);
  assert.deepEqual(recorder.all('recovery_failed'), [{ reason: 'session_refused' }]);
  assert.equal(client.sessionId, 'b'.repeat(32));
  await client.close();
});

test('close() while waiting to retry stops for good', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket({ onCreate: failEvery });
  const client = makeClient({ url: URL_A, token: 't', WebSocket, initialBackoff: 100 });
  const recorder = new Recorder(client);
  client.start();
  const { retryIn } = await recorder.next('disconnected');
  await client.close();
  // Nothing to await for an attempt that must not happen: wait past the retry once.
  await new Promise((resolve) => setTimeout(resolve, retryIn + 100));
  assert.equal(WebSocket.sockets.length, 1);
  assert.equal(client.status, 'closed');
  assert.equal(recorder.length, 1);
});

test('a connection that never opens times out and is retried', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket();
  const client = makeClient({ url: URL_A, token: 't', WebSocket, connectTimeout: 30, maxAttempts: 2, initialBackoff: 1 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('disconnected', (d) => d.retryIn === null);
  assert.deepEqual(recorder.all('disconnected').map((d) => d.reason), ['connect timeout', 'connect timeout']);
  assert.ok(WebSocket.sockets.every((s) => s.readyState >= 2), 'timed-out sockets are closed');
});

test('URLs: ws(s) as given, http(s) mapped, a path needs a page location', () => {
  const WebSocket = fakeWebSocket();
  assert.throws(() => new GatewayClient({ url: '/ws', WebSocket }), /page location/);
  assert.throws(() => new GatewayClient({ WebSocket }), /url/);
  assert.throws(() => new GatewayClient({ url: 'ftp://x/ws', WebSocket }), /not a WebSocket URL/);
  const original = Object.getOwnPropertyDescriptor(globalThis, 'location');
  Object.defineProperty(globalThis, 'location', { value: { href: 'https://portal.test/app/index.html' }, configurable: true });
  try {
    const client = makeClient('/ws/experiments/exp-1', { WebSocket, token: 't' });
    client.start();
  } finally {
    if (original) Object.defineProperty(globalThis, 'location', original);
    else delete globalThis.location;
  }
  return new Promise((resolve) => setImmediate(resolve)).then(() => {
    assert.equal(WebSocket.sockets[0].url.origin, 'wss://portal.test');
    assert.equal(WebSocket.sockets[0].url.pathname, '/ws/experiments/exp-1');
  });
});

test('against a closed port: real WebSocket failures, then giving up', { timeout: 10_000 }, async () => {
  const port = await freePort();
  const client = makeClient({ url: `ws://127.0.0.1:${port}/ws`, token: 't', initialBackoff: 20, maxAttempts: 3 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('disconnected', (d) => d.retryIn === null, { what: 'giving up' });
  const disconnects = recorder.all('disconnected');
  assert.equal(disconnects.length, 3);
  assert.ok(disconnects.every((d) => d.code === 1006), `failed connections close with 1006: ${JSON.stringify(disconnects)}`);
});

test('a refused token (1008 before admission) is not retried when the token is a string', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket({ onCreate: (socket) => { socket.open(); socket.serverClose(1008, 'Invalid or expired token'); } });
  const client = makeClient({ url: URL_A, token: 'expired', WebSocket, initialBackoff: 1 });
  const recorder = new Recorder(client);
  client.start();
  const ended = await recorder.next('disconnected');
  assert.deepEqual(ended, { code: 1008, reason: 'Invalid or expired token', retryIn: null });
  assert.equal(client.status, 'closed');
  assert.equal(WebSocket.sockets.length, 1);
});

test('a token function that hands back the refused token is not used again', { timeout: 5_000 }, async () => {
  let asked = 0;
  const WebSocket = fakeWebSocket({ onCreate: (socket) => { socket.open(); socket.serverClose(1008, 'Invalid or expired token'); } });
  const client = makeClient({ url: URL_A, token: () => { asked += 1; return 'cached'; }, WebSocket, initialBackoff: 1 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.next('disconnected', (d) => d.retryIn === null, { what: 'giving up' });
  assert.equal(asked, 2, 'asked once for a fresh token');
  assert.equal(WebSocket.sockets.length, 1, 'the same token is not sent to be refused again');
  assert.match(recorder.all('disconnected')[1].reason, /same token/);
});

test('a fresh token that is admitted renews the one chance for the next refusal', { timeout: 5_000 }, async () => {
  const refuse = (socket) => { socket.open(); socket.serverClose(1008, 'Invalid or expired token'); };
  // refused, admitted (then dropped), refused, admitted: each refusal follows an admission.
  const WebSocket = fakeWebSocket({
    onCreate: (socket, n) => {
      if (n === 1 || n === 3) return refuse(socket);
      socket.admit();
      if (n === 2) socket.serverClose(1006);
    },
  });
  let issued = 0;
  const client = makeClient({ url: URL_A, token: () => `token-${++issued}`, WebSocket, initialBackoff: 1 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.until(() => recorder.all('connected').length === 2, { what: 'the second admission' });
  assert.deepEqual(recorder.all('disconnected').map((d) => d.code), [1008, 1006, 1008]);
  assert.ok(recorder.all('disconnected').every((d) => d.retryIn !== null));
  await client.close();
});

test('a 1008 after admission (slow consumer, flooding) is retried like any drop', { timeout: 5_000 }, async () => {
  const WebSocket = fakeWebSocket({
    onCreate: (socket, n) => {
      socket.admit();
      if (n === 1) socket.serverClose(1008, 'Slow consumer: outbound queue overflow');
    },
  });
  const client = makeClient({ url: URL_A, token: 'still-valid', WebSocket, initialBackoff: 1 });
  const recorder = new Recorder(client);
  client.start();
  await recorder.until(() => recorder.all('connected').length === 2, { what: 'the reconnection' });
  assert.equal(recorder.all('disconnected')[0].code, 1008);
  assert.equal(typeof recorder.all('disconnected')[0].retryIn, 'number');
  await client.close();
});
