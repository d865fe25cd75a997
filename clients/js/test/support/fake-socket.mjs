// A scripted stand-in for the WebSocket constructor: the test plays the server.

export function fakeWebSocket({ onCreate } = {}) {
  const sockets = [];
  class FakeWebSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;

    constructor(url) {
      this.url = new URL(url);
      this.readyState = 0;
      this.sent = [];
      this.listeners = new Map();
      sockets.push(this);
      // Let the client attach its listeners before the script acts.
      if (onCreate) queueMicrotask(() => onCreate(this, sockets.length));
    }

    addEventListener(name, listener) {
      if (!this.listeners.has(name)) this.listeners.set(name, []);
      this.listeners.get(name).push(listener);
    }

    #fire(name, event) {
      for (const listener of this.listeners.get(name) ?? []) listener(event);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error('send on a socket that is not open');
      this.sent.push(JSON.parse(data));
    }

    close(code = 1005, reason = '') {
      if (this.readyState >= 2) return;
      this.readyState = 2;
      queueMicrotask(() => this.#closed(code, reason));
    }

    // The server's side ---------------------------------------------------------

    open() {
      this.readyState = 1;
      this.#fire('open', {});
    }

    /** open() and the `connected` message, in one step. */
    admit({ sessionId = 'a'.repeat(32), nodeId = 'node-1', resumed = false, subscriptions = [], cursor = '100-0' } = {}) {
      this.open();
      this.receive({
        type: 'system_status',
        id: 'system-1',
        timestamp: '2026-01-01T00:00:00Z',
        data: { action: 'connected', sessionId, nodeId, resumed, subscriptions },
        ...(cursor === null ? {} : { cursor }),
      });
    }

    receive(message) {
      this.#fire('message', { data: typeof message === 'string' ? message : JSON.stringify(message) });
    }

    /** The server closes (or the connection fails: code 1006). */
    serverClose(code, reason = '') {
      if (this.readyState === 3) return;
      if (code === 1006) this.#fire('error', {});
      this.#closed(code, reason);
    }

    #closed(code, reason) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.#fire('close', { code, reason });
    }
  }
  FakeWebSocket.sockets = sockets;
  return FakeWebSocket;
}
