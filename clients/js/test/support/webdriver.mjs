// Headless Chromium for the browser test, driven through chromedriver's W3C WebDriver HTTP
// API (a handful of calls; no Selenium needed). chromium and chromedriver are found on PATH
// (CHROME_BIN and CHROMEDRIVER override them).

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './gateway.mjs';

/** How long chromedriver and the browser session may take to start. */
const START_TIMEOUT = 30_000;
/** The longest a single WebDriver call may take. */
const CALL_TIMEOUT = 30_000;

/** The first of `names` that is an executable on PATH, or null. */
export function onPath(...names) {
  for (const name of names) {
    for (const directory of (process.env.PATH ?? '').split(delimiter)) {
      if (!directory) continue;
      const candidate = join(directory, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/**
 * Starts chromedriver and one headless Chromium session. Resolves to a Browser; call
 * `quit()` when done.
 */
export async function startBrowser() {
  const chrome = process.env.CHROME_BIN || onPath('chromium', 'chromium-browser', 'google-chrome');
  const driverPath = process.env.CHROMEDRIVER || onPath('chromedriver');
  if (!chrome || !driverPath) {
    throw new Error(`the browser test needs chromium and chromedriver on PATH (found ${chrome ?? 'no chromium'}, ${driverPath ?? 'no chromedriver'})`);
  }
  const port = await freePort();
  const profile = await mkdtemp(join(tmpdir(), 'airavata-chromium-'));
  const driver = spawn(driverPath, [`--port=${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk) => { output = (output + chunk).slice(-10_000); };
  driver.stdout.on('data', keep);
  driver.stderr.on('data', keep);
  const exited = new Promise((resolve) => driver.once('exit', resolve));
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    driver.kill('SIGTERM');
    await exited;
    await rm(profile, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + START_TIMEOUT;
    for (;;) {
      if (driver.exitCode !== null) throw new Error(`chromedriver exited: ${output}`);
      const ready = await call(base, 'GET', '/status').then((value) => value?.ready === true, () => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(`chromedriver did not start within ${START_TIMEOUT} ms: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const session = await call(base, 'POST', '/session', {
      capabilities: {
        alwaysMatch: {
          browserName: 'chrome',
          'goog:chromeOptions': {
            binary: chrome,
            args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', `--user-data-dir=${profile}`],
          },
        },
      },
    });
    return new Browser(base, session.sessionId, stop, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
}

class Browser {
  constructor(base, sessionId, stop, driverOutput) {
    this.base = base;
    this.session = `/session/${sessionId}`;
    this.stop = stop;
    this.driverOutput = driverOutput;
  }

  open(url) {
    return call(this.base, 'POST', `${this.session}/url`, { url });
  }

  /** Runs `script` (a function body; `arguments` holds `args`) in the page; resolves to its result. */
  execute(script, ...args) {
    return call(this.base, 'POST', `${this.session}/execute/sync`, { script, args });
  }

  /**
   * Re-reads `script`'s result in the page until `check(result)` holds; resolves to that
   * result. On timeout the error names `what` and shows the last result.
   */
  async until(script, check, { timeout = 15_000, what = 'a page condition', interval = 50 } = {}) {
    const deadline = Date.now() + timeout;
    let last;
    for (;;) {
      last = await this.execute(script);
      if (check(last)) return last;
      if (Date.now() > deadline) throw new Error(`waited ${timeout} ms for ${what}; the page last gave ${JSON.stringify(last)?.slice(0, 3000)}`);
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }

  async quit() {
    await call(this.base, 'DELETE', this.session).catch(() => {});
    await this.stop();
  }
}

async function call(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(CALL_TIMEOUT),
  });
  const answer = await response.json();
  if (!response.ok || answer.value?.error) {
    throw new Error(`WebDriver ${method} ${path}: ${response.status} ${JSON.stringify(answer.value ?? answer).slice(0, 2000)}`);
  }
  return answer.value;
}
