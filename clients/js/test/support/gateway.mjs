// Real gateway nodes and a real redis-server for the client tests, on loopback ports.
//
// GATEWAY_BIN names the gateway executable (default: this repository's debug build,
// .build/debug/airavata-gateway). It is copied to a temporary directory first, so that a
// rebuild during the run cannot swap it underneath. redis-server is taken from PATH.

import { spawn, execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SECRET = 'airavata-js-client-tests-secret-0123456789';
/** The debug build of the checkout these tests belong to (clients/js/test/support → the root). */
export const DEFAULT_BIN = fileURLToPath(new URL('../../../../.build/debug/airavata-gateway', import.meta.url));
const START_TIMEOUT = 15_000;

if (typeof WebSocket === 'undefined') {
  throw new Error('no global WebSocket: run the tests with node --experimental-websocket --test (Node 20.10+)');
}

const children = new Set();
// Last resort if a test file dies without running its `after` hooks.
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** A private copy of the gateway binary; `dispose()` removes it. */
export async function gatewayBinary() {
  const source = process.env.GATEWAY_BIN || DEFAULT_BIN;
  const directory = await mkdtemp(join(tmpdir(), 'airavata-js-'));
  const path = join(directory, 'airavata-gateway');
  try {
    await copyFile(source, path);
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw new Error(`cannot copy the gateway binary ${source} (run \`swift build\` at the repository root, or set GATEWAY_BIN): ${error.message}`);
  }
  const run = (args) =>
    new Promise((resolve, reject) => {
      execFile(path, args, { timeout: 10_000 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${path} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
        else resolve(stdout.trim());
      });
    });
  return {
    path,
    /** A token signed with SECRET, e.g. token('alice', { projects: ['proj-1'] }). */
    token: (sub, { projects = [], roles = [], ttl = '1h' } = {}) =>
      run(['token', '--secret', SECRET, '--sub', sub, ...projects.flatMap((p) => ['--project', p]), ...roles.flatMap((r) => ['--role', r]), '--ttl', ttl]),
    dispose: () => rm(directory, { recursive: true, force: true }),
  };
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A child process whose output is kept for failure messages. */
class Child {
  constructor(name, command, args) {
    this.name = name;
    this.output = '';
    this.process = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.process);
    const keep = (chunk) => {
      this.output = (this.output + chunk).slice(-20_000);
    };
    this.process.stdout.on('data', keep);
    this.process.stderr.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => {
        children.delete(this.process);
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
  }

  get running() {
    return this.exitStatus === undefined;
  }

  /** The last lines of its output, for an assertion message. */
  tail(lines = 25) {
    return `--- ${this.name} (${this.running ? 'running' : `exited ${JSON.stringify(this.exitStatus)}`}) ---\n`
      + this.output.split('\n').slice(-lines).join('\n');
  }

  signal(name) {
    if (this.running) this.process.kill(name);
  }

  /** Waits for the exit, SIGKILLing after `grace` ms. */
  async stop(grace = 3000) {
    if (!this.running) return this.exitStatus;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), grace);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }
}

async function until(check, timeout, what, child) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (child && !child.running) throw new Error(`${what}: the process exited\n${child.tail()}`);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms${child ? `\n${child.tail()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** redis-server on a free port, without persistence. */
export async function startRedis() {
  const port = await freePort();
  const child = new Child(`redis:${port}`, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await until(() => redisAnswers(port), START_TIMEOUT, `redis-server on port ${port}`, child);
  return { port, url: `redis://127.0.0.1:${port}/0`, child, stop: () => child.stop() };
}

function redisAnswers(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/**
 * A gateway node on a free port, ready (GET /readyz is 200) when this resolves.
 * options: nodeId, redisUrl, args (more `serve` flags).
 */
export async function startGateway(binary, { nodeId = 'node-1', redisUrl, args = [] } = {}) {
  for (let tries = 1; ; tries += 1) {
    const port = await freePort();
    const child = new Child(`gateway ${nodeId}:${port}`, binary.path, [
      'serve', '--host', '127.0.0.1', '--port', String(port), '--jwt-secret', SECRET, '--node-id', nodeId,
      '--drain-delay', '0', '--drain-spread', '200ms', '--stats-interval', '0',
      ...(redisUrl ? ['--redis-url', redisUrl] : []),
      ...args,
    ]);
    try {
      await until(() => ready(port), START_TIMEOUT, `gateway ${nodeId} on port ${port}`, child);
    } catch (error) {
      await child.stop();
      // Another process may have taken the port between our probe and the bind.
      if (tries < 3 && /address already in use/i.test(child.output)) continue;
      throw error;
    }
    return {
      port,
      nodeId,
      child,
      url: (path = '/ws') => `ws://127.0.0.1:${port}${path}`,
      publish: (token, events) => publish(port, token, events),
      stop: () => child.stop(),
    };
  }
}

// Plain node:http without keep-alive: each helper request on its own connection, so that
// the tests' WebSockets never share one with them. (The gateway upgrades a kept-alive
// connection too since it re-arms its upgrade handler; the Swift suite tests that case.)
function request(port, method, path, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false, timeout: 5000 }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode, text }));
      response.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function ready(port) {
  try {
    return (await request(port, 'GET', '/readyz')).status === 200;
  } catch {
    return false;
  }
}

/** POST /api/v1/events; resolves to the 202 answer ({accepted, ids, cursors}). */
export async function publish(port, token, events) {
  const { status, text } = await request(port, 'POST', '/api/v1/events', {
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(events),
  });
  if (status !== 202) throw new Error(`publish to port ${port} answered ${status}: ${text}`);
  return JSON.parse(text);
}

/** An experiment_progress event that every node can route without having seen the experiment. */
export function progress(experimentId, sequence, { ownerId = 'alice', projectId = 'proj-1' } = {}) {
  return { type: 'experiment_progress', data: { experimentId, completedTasks: sequence }, routing: { ownerId, projectId } };
}
