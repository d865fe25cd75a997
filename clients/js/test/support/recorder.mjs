// Records everything a GatewayClient reports, in order, and waits for what a test expects
// without sleeping. A timeout names what was awaited and shows what came instead.

import { EVENTS } from '../../airavata-client.mjs';

export class Recorder {
  constructor(client) {
    this.client = client;
    this.records = [];
    this.waiters = new Set();
    this.removers = EVENTS.map((name) => client.on(name, (detail) => this.#add(name, detail)));
  }

  #add(name, detail) {
    const record = { name, detail, index: this.records.length };
    this.records.push(record);
    for (const waiter of [...this.waiters]) waiter(record);
  }

  /** Records of one kind, optionally filtered. */
  all(name, predicate = () => true) {
    return this.records.filter((r) => r.name === name && predicate(r.detail)).map((r) => r.detail);
  }

  /** Events the application received (the `message` records) of the given types. */
  messages(...types) {
    return this.all('message', (m) => types.length === 0 || types.includes(m.type));
  }

  /** The next record (at or after index `from`) of `name` matching `predicate`. */
  next(name, predicate = () => true, { from = 0, timeout = 10_000, what } = {}) {
    const description = what ?? `a "${name}" record`;
    const found = this.records.find((r) => r.index >= from && r.name === name && predicate(r.detail));
    if (found) return Promise.resolve(found.detail);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`waited ${timeout} ms for ${description}; the client reported:\n${this.dump()}`));
      }, timeout);
      const waiter = (record) => {
        if (record.index >= from && record.name === name && predicate(record.detail)) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(record.detail);
        }
      };
      this.waiters.add(waiter);
    });
  }

  /** Resolves once `check()` is true, re-checked after every record. */
  until(check, { timeout = 10_000, what = 'a condition' } = {}) {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`waited ${timeout} ms for ${what}; the client reported:\n${this.dump()}`));
      }, timeout);
      const waiter = () => {
        if (check()) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        }
      };
      this.waiters.add(waiter);
    });
  }

  get length() {
    return this.records.length;
  }

  dump(last = 40) {
    return this.records.slice(-last).map((r) => `  #${r.index} ${r.name} ${JSON.stringify(r.detail)}`).join('\n');
  }

  detach() {
    for (const remove of this.removers) remove();
  }
}

/**
 * A WebSocket constructor that behaves like the real one and remembers every socket
 * (with the URL it was opened with and what was sent), so a test can cut a connection.
 */
export function trackingWebSocket(Base = globalThis.WebSocket) {
  const sockets = [];
  const waiters = new Set();
  class TrackingWebSocket extends Base {
    constructor(url, protocols) {
      super(url, protocols);
      this.openedWith = new URL(url);
      this.sent = [];
      sockets.push(this);
    }

    send(data) {
      this.sent.push(data);
      const result = super.send(data);
      for (const waiter of [...waiters]) waiter();
      return result;
    }

    /** Resolves once `check()` holds, re-checked after every message any socket sends. */
    static whenSent(check, { timeout = 10_000, what = 'a message sent' } = {}) {
      if (check()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`waited ${timeout} ms for ${what}`));
        }, timeout);
        const waiter = () => {
          if (!check()) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve();
        };
        waiters.add(waiter);
      });
    }
  }
  TrackingWebSocket.sockets = sockets;
  return TrackingWebSocket;
}

/** A promise and its resolver, for gates a test opens when it is ready. */
export function gate() {
  let open;
  const promise = new Promise((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
