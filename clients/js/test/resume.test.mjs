// Failover with resume: two gateway nodes sharing a real redis-server. The client is on
// node 1 while a producer publishes through node 2; node 1 is drained (SIGTERM) or
// killed (SIGKILL) mid-stream. Every event must arrive exactly once and in order, and
// the second connection must be a resume on node 2.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayClient } from '../airavata-client.mjs';
import { Recorder, trackingWebSocket } from './support/recorder.mjs';
import { gatewayBinary, progress, startGateway, startRedis } from './support/gateway.mjs';

const EVENTS_BEFORE_SIGNAL = 20;
const EVENTS_AFTER_RESUME = 30;
const MAX_EVENTS = 1000;

let binary;
let redis;
let alice;
let service;
const stoppers = [];

before(async () => {
  binary = await gatewayBinary();
  redis = await startRedis();
  [alice, service] = await Promise.all([
    binary.token('alice', { projects: ['proj-1'] }),
    binary.token('producer', { roles: ['service'] }),
  ]);
});

after(async () => {
  for (const stop of stoppers.reverse()) await stop();
  await redis?.stop();
  await binary?.dispose();
});

async function failover(t, signal) {
  // Distinct key prefixes keep the two runs from sharing sessions and logs.
  const prefix = `js-${signal.toLowerCase()}`;
  const args = ['--redis-key-prefix', prefix];
  const [first, second] = await Promise.all([
    startGateway(binary, { nodeId: 'node-1', redisUrl: redis.url, args }),
    startGateway(binary, { nodeId: 'node-2', redisUrl: redis.url, args }),
  ]);
  stoppers.push(() => first.stop(), () => second.stop());
  const diagnostics = () => `${first.child.tail(15)}\n${second.child.tail(15)}`;

  const WebSocket = trackingWebSocket();
  const client = new GatewayClient({
    urls: [first.url('/ws/experiments/exp-1'), second.url('/ws/experiments/exp-1')],
    token: alice,
    WebSocket,
  });
  stoppers.push(() => client.close());
  client.subscribe('experiment', 'exp-2');
  const recorder = new Recorder(client);
  client.start();
  const connected = await recorder.next('connected');
  assert.deepEqual({ nodeId: connected.nodeId, resumed: connected.resumed }, { nodeId: 'node-1', resumed: false });
  await recorder.next('message', (m) => m.data?.action === 'subscribed' && m.data.resourceId === 'exp-2');
  const mark = recorder.length;

  // Odd numbers go to exp-1 (the path subscription), even ones to exp-2 (the explicit one).
  let published = 0;
  let stopAt = MAX_EVENTS;
  const resumedConnection = recorder.next('connected', () => true, { from: mark, timeout: 20_000, what: 'the second connection' });
  resumedConnection.then(() => { stopAt = Math.min(stopAt, published + EVENTS_AFTER_RESUME); }, () => {});
  const producer = (async () => {
    while (published < stopAt) {
      published += 1;
      await second.publish(service, [progress(published % 2 ? 'exp-1' : 'exp-2', published)]);
      if (published === EVENTS_BEFORE_SIGNAL) first.child.signal(signal);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();

  const again = await resumedConnection;
  await producer;
  const received = () => recorder.messages('experiment_progress').map((m) => m.data.completedTasks);
  // Delivery is in order: once the last event is in, anything missing is lost.
  await recorder.until(() => received().includes(published), { timeout: 15_000, what: `event ${published}, the last one` })
    .catch((error) => { throw new Error(`${error.message}\n${diagnostics()}`); });

  const expected = Array.from({ length: published }, (_, i) => i + 1);
  assert.deepEqual(received(), expected, 'every event once, in order, across the failover');
  assert.deepEqual({ nodeId: again.nodeId, resumed: again.resumed, sessionId: again.sessionId },
    { nodeId: 'node-2', resumed: true, sessionId: connected.sessionId });
  assert.deepEqual(recorder.all('recovery_failed'), [], 'nothing was lost');
  const replay = await recorder.next('replay_complete', () => true, { from: mark });
  const resumeUrl = WebSocket.sockets[1].openedWith;
  assert.equal(resumeUrl.searchParams.get('session'), connected.sessionId);
  assert.match(resumeUrl.searchParams.get('cursor'), /^\d+-\d+$/);
  const resubscribes = WebSocket.sockets[1].sent.filter((text) => JSON.parse(text).data?.action === 'subscribe');
  assert.deepEqual(resubscribes, [], 'the resumed session brought exp-2 back: nothing to send');
  const events = recorder.messages('experiment_progress');
  assert.equal(client.cursor, events.at(-1).cursor);
  t.diagnostic(`${published} events, ${replay.replayed} of them replayed; `
    + `resumed on ${again.nodeId} after ${JSON.stringify(recorder.all('disconnected')[0])}`);
  return { recorder, replay, first };
}

test('a drained node (SIGTERM): reconnect notice, 1012, resume on the other node, nothing lost or repeated', { timeout: 60_000 }, async (t) => {
  const { recorder, first } = await failover(t, 'SIGTERM');
  const notice = recorder.messages('system_status').find((m) => m.data?.action === 'reconnect');
  assert.ok(notice, `the draining node says reconnect first; got:\n${recorder.dump()}`);
  const disconnected = recorder.all('disconnected')[0];
  assert.equal(disconnected.code, 1012);
  assert.ok(disconnected.retryIn <= 250, `after 1012 the client retries within 250 ms, waited ${disconnected.retryIn}`);
  assert.deepEqual(await first.child.exited, { code: 0, signal: null }, 'the drained node exits by itself');
});

test('a killed node (SIGKILL): resume on the other node replays the gap, nothing lost or repeated', { timeout: 60_000 }, async (t) => {
  const { recorder, replay } = await failover(t, 'SIGKILL');
  const disconnected = recorder.all('disconnected')[0];
  assert.equal(disconnected.code, 1006);
  assert.ok(disconnected.retryIn >= 250 && disconnected.retryIn <= 500, `first backoff in [250, 500] ms, was ${disconnected.retryIn}`);
  assert.ok(replay.replayed > 0, `events published during the backoff come back by replay: ${JSON.stringify(replay)}`);
});
