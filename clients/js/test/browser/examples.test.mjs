// The example pages in headless Chromium, against a real two-node cluster (redis-server and
// two gateway nodes on loopback ports): the client imported from this repository as an ES
// module, events across nodes, a drain of the page's node survived by resume with every
// event exactly once, and the React hook example rendering updates.
//
//   node --experimental-websocket --test clients/js/test/browser/examples.test.mjs
//
// Needs chromium and chromedriver on PATH, React from node_modules or Debian's node-react
// (examples/serve.mjs), and the gateway binary (GATEWAY_BIN, default the repository's
// debug build). `swift test` runs it (JavaScriptClientTests).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { serveExamples } from '../../examples/serve.mjs';
import { gatewayBinary, progress, startGateway, startRedis } from '../support/gateway.mjs';
import { startBrowser } from '../support/webdriver.mjs';

/** Events published before node 1 is drained, and after the page has resumed. */
const EVENTS_BEFORE_DRAIN = 20;
const EVENTS_AFTER_RESUME = 20;
/** A bound on the producer, should the resume never come. */
const MAX_EVENTS = 2000;

let binary;
let redis;
let nodes;
let server;
let browser;
let alice;
let service;

before(async () => {
  binary = await gatewayBinary();
  redis = await startRedis();
  const args = ['--redis-key-prefix', 'js-browser'];
  nodes = await Promise.all([
    startGateway(binary, { nodeId: 'node-1', redisUrl: redis.url, args }),
    startGateway(binary, { nodeId: 'node-2', redisUrl: redis.url, args }),
  ]);
  [alice, service] = await Promise.all([
    binary.token('alice', { projects: ['proj-1'] }),
    binary.token('producer', { roles: ['service'] }),
  ]);
  server = await serveExamples();
  browser = await startBrowser();
});

after(async () => {
  await browser?.quit();
  await server?.close();
  for (const node of nodes ?? []) await node.stop();
  await redis?.stop();
  await binary?.dispose();
});

function page(name, urls) {
  const query = new URLSearchParams([...urls.map((url) => ['url', url]), ['token', alice]]);
  return server.url(`/examples/${name}?${query}`);
}

const diagnostics = () => nodes.map((node) => node.child.tail(15)).join('\n');

test('the example page connects through the cluster, receives events, and survives a drain with resume: 0 lost, 0 duplicated', { timeout: 90_000 }, async (t) => {
  const [first, second] = nodes;
  const path = '/ws/experiments/exp-b';
  await browser.open(page('browser.html', [first.url(path), second.url(path)]));
  const state = () => browser.execute('const r = window.gatewayExample; return r ? { ...r, status: document.getElementById("status").textContent } : null;');
  const read = (check, what, timeout) => browser.until(
    'const r = window.gatewayExample; return r ? { ...r, status: document.getElementById("status").textContent } : null;',
    (r) => r !== null && check(r), { what, timeout },
  ).catch((error) => { throw new Error(`${error.message}\n${diagnostics()}`); });

  const connected = await read((r) => r.connections.length === 1, 'the first connection', 30_000);
  assert.deepEqual({ nodeId: connected.connections[0].nodeId, resumed: connected.connections[0].resumed }, { nodeId: 'node-1', resumed: false });
  assert.equal(connected.status, 'connected', 'the page shows the connection');

  // Published through node 2, delivered by node 1: the cluster carries them.
  let published = 0;
  const publishNext = () => second.publish(service, [progress('exp-b', ++published)]);
  for (let i = 0; i < 5; i += 1) await publishNext();
  await read((r) => r.events.length === 5, 'the first five events');

  // Drain node 1 mid-stream; keep publishing until the page has resumed on node 2.
  let stopAt = MAX_EVENTS;
  let resumed = false;
  const producer = (async () => {
    while (published < stopAt) {
      await publishNext();
      if (published === EVENTS_BEFORE_DRAIN) first.child.signal('SIGTERM');
      if (!resumed && published > EVENTS_BEFORE_DRAIN) {
        const { connections } = await state();
        if (connections.length === 2) {
          resumed = true;
          stopAt = published + EVENTS_AFTER_RESUME;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  await producer;
  assert.ok(resumed, `the page reconnected within ${MAX_EVENTS} events\n${diagnostics()}`);
  // The sentinel goes last: once it is in, anything missing was lost, and anything after
  // it would be a late duplicate.
  await second.publish(service, [{
    type: 'experiment_completed',
    data: { experiment: { id: 'exp-b', name: 'sentinel', status: 'COMPLETED', ownerId: 'alice', projectId: 'proj-1' } },
  }]);
  const done = await read((r) => r.events.some((e) => e.type === 'experiment_completed'), 'the sentinel event', 20_000);

  const sequence = done.events.filter((e) => e.type === 'experiment_progress').map((e) => e.data.completedTasks);
  const expected = Array.from({ length: published }, (_, i) => i + 1);
  const lost = expected.filter((n) => !sequence.includes(n));
  const duplicated = sequence.filter((n, i) => sequence.indexOf(n) !== i);
  assert.deepEqual({ lost, duplicated }, { lost: [], duplicated: [] }, `${published} events published`);
  assert.deepEqual(sequence, expected, 'in order');
  assert.equal(done.events.at(-1).type, 'experiment_completed', 'the sentinel came last');
  assert.equal(done.events.filter((e) => e.type === 'experiment_completed').length, 1, 'the sentinel came once');
  const cursors = done.events.map((e) => e.cursor);
  assert.ok(cursors.every((c, i) => i === 0 || compareCursors(cursors[i - 1], c) < 0), `cursors increase: ${cursors.join(' ')}`);

  const [earlier, later] = done.connections;
  assert.deepEqual({ nodeId: later.nodeId, resumed: later.resumed, sessionId: later.sessionId },
    { nodeId: 'node-2', resumed: true, sessionId: earlier.sessionId }, 'the second connection resumed the session on node 2');
  assert.equal(done.disconnects[0]?.code, 1012, `the drained node closed with 1012: ${JSON.stringify(done.disconnects)}`);
  assert.equal(done.replays.length, 1, `one replay_complete: ${JSON.stringify(done.replays)}`);
  assert.deepEqual(done.recoveryFailures, [], 'nothing was reported lost');
  assert.deepEqual(done.errors, [], 'no errors in the page');
  assert.equal(done.status, 'connected (resumed)');
  assert.deepEqual(await first.child.exited, { code: 0, signal: null }, 'the drained node exited by itself');
  t.diagnostic(`${published} events + sentinel, ${done.replays[0].replayed} replayed; disconnect ${JSON.stringify(done.disconnects[0])}`);
});

test('the React example renders the hook\'s updates', { timeout: 60_000 }, async () => {
  const [, second] = nodes;
  await browser.open(page('react.html', [second.url('/ws/experiments/exp-r')]));
  const script = `
    const text = (id) => document.getElementById(id)?.textContent ?? null;
    return { status: text('status'), node: text('node'), count: text('count'), completed: text('completed'),
      recovery: text('recovery'), errors: window.gatewayExample?.errors ?? null, react: typeof React };`;
  const rendered = await browser.until(script, (r) => r.status === 'connected', { what: 'the hook to render "connected"' });
  assert.equal(rendered.react, 'object', 'React loaded from the served build');
  assert.equal(rendered.node, 'node-2');
  assert.equal(rendered.count, '0');

  for (const n of [1, 2, 3]) await second.publish(service, [progress('exp-r', n)]);
  const updated = await browser.until(script, (r) => r.count === '3' && r.completed === '3', { what: 'three events rendered' });
  assert.deepEqual(
    { status: updated.status, node: updated.node, recovery: updated.recovery, errors: updated.errors },
    { status: 'connected', node: 'node-2', recovery: 'none', errors: [] },
  );
});

/** Orders two `<ms>-<seq>` cursors. */
function compareCursors(a, b) {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am === bm ? Number(as - bs) : Number(am - bm);
}
