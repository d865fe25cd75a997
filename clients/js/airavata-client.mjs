// The official JavaScript client of the Airavata Gateway: one logical connection that
// outlives server restarts, node failures and network blips.
//
// It mirrors the Swift client (Sources/AiravataClient/GatewayClient.swift): capped
// exponential backoff with jitter, a short jittered retry after a server restart (1012),
// resume from the last cursor seen, and its own record of explicit subscriptions so that
// it can restore whatever the server did not. A token the server refuses (1008) is not
// retried: only a token function gets one chance to bring a fresh one. One dependency-free
// ES module for browsers and Node 20+ (`node --experimental-websocket`, or pass a WebSocket
// constructor); its types are in airavata-client.d.mts.

const DEFAULTS = Object.freeze({
  resume: true,
  initialBackoff: 500,
  maxBackoff: 30_000,
  restartJitter: 250,
  maxAttempts: Infinity,
  connectTimeout: 10_000,
});

/** The names `on()` accepts. */
export const EVENTS = Object.freeze(['connected', 'message', 'replay_complete', 'recovery_failed', 'disconnected']);

const SERVICE_RESTART = 1012;
const NORMAL_CLOSURE = 1000;
/** The server refused the connection at the door: a bad or expired token, or a path the token may not see. */
const POLICY_VIOLATION = 1008;

export class GatewayClient {
  #options;
  #urls;
  #WebSocket;
  #listeners = new Map();
  /** key → { resourceType, resourceId } */
  #subscriptions = new Map();

  #status = 'idle';
  #sessionId = null;
  #cursor = null;
  /** The attempt in progress, or the admitted connection. */
  #connection = null;
  #retryTimer = null;
  /** Attempts so far, for rotating through the URLs. */
  #attempts = 0;
  /** Attempts since the last admitted connection, for `maxAttempts`. */
  #failures = 0;
  #backoff;
  #everAdmitted = false;
  /** Why the next connection will not resume although we had a session; set after a refusal. */
  #sessionLost = null;
  /**
   * `{ token }` the server refused (1008 before admission) while the client tries a fresh
   * one from the token function; null when no refusal is pending.
   */
  #refusal = null;

  /**
   * @param {string | object} urlOrOptions  a URL, or the options object itself
   * @param {object} [options]  see README.md
   */
  constructor(urlOrOptions, options = {}) {
    const given = typeof urlOrOptions === 'string' ? { ...options, url: urlOrOptions } : { ...urlOrOptions };
    this.#options = { ...DEFAULTS, ...withoutUndefined(given) };
    if (this.#options.maxAttempts === null) this.#options.maxAttempts = Infinity;
    const list = [...(given.url ? [given.url] : []), ...(given.urls ?? [])];
    if (list.length === 0) throw new TypeError('GatewayClient needs `url` or `urls`');
    this.#urls = list.map(resolveUrl);
    this.#WebSocket = given.WebSocket ?? globalThis.WebSocket;
    if (typeof this.#WebSocket !== 'function') {
      throw new TypeError('no WebSocket available: pass `WebSocket` in the options, or run Node with --experimental-websocket');
    }
    const { initialBackoff, maxBackoff, restartJitter, maxAttempts } = this.#options;
    for (const [name, value] of Object.entries({ initialBackoff, maxBackoff, restartJitter, maxAttempts })) {
      if (typeof value !== 'number' || Number.isNaN(value) || value < 0) throw new TypeError(`${name} must be a number ≥ 0`);
    }
    this.#backoff = initialBackoff;
    for (const item of given.subscriptions ?? []) {
      const [resourceType, resourceId] = Array.isArray(item) ? item : [item.resourceType, item.resourceId];
      this.#remember(resourceType, resourceId);
    }
  }

  /** 'idle', 'connecting', 'connected', 'waiting' (between attempts) or 'closed'. */
  get status() { return this.#status; }
  /** The session to resume, once the server has assigned one. */
  get sessionId() { return this.#sessionId; }
  /** The cursor of the last message that carried one: where a resume starts. */
  get cursor() { return this.#cursor; }
  /** The explicit subscriptions the client keeps. */
  get subscriptions() { return [...this.#subscriptions.values()].map((s) => ({ ...s })); }

  /** Adds a listener; returns a function that removes it. */
  on(name, listener) {
    if (!EVENTS.includes(name)) throw new TypeError(`unknown event "${name}"; one of ${EVENTS.join(', ')}`);
    if (!this.#listeners.has(name)) this.#listeners.set(name, new Set());
    this.#listeners.get(name).add(listener);
    return () => this.off(name, listener);
  }

  off(name, listener) {
    this.#listeners.get(name)?.delete(listener);
  }

  once(name, listener) {
    const remove = this.on(name, (detail) => {
      remove();
      listener(detail);
    });
    return remove;
  }

  /** Starts connecting; returns the client. A second call does nothing. */
  start() {
    if (this.#status === 'idle') this.#connect();
    return this;
  }

  /**
   * Closes the connection and stops reconnecting, for good. The promise settles when the
   * socket has closed (or after two seconds if the server does not answer the close).
   */
  close() {
    this.#status = 'closed';
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    const connection = this.#connection;
    this.#connection = null;
    if (!connection) return Promise.resolve();
    connection.finished = true;
    clearTimeout(connection.connectTimer);
    const { socket } = connection;
    if (socket.readyState === 3) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 2000);
      socket.addEventListener('close', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        socket.close(NORMAL_CLOSURE);
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** Subscribes now if connected, and again whenever a connection did not bring it back. */
  subscribe(resourceType, resourceId) {
    const subscription = this.#remember(resourceType, resourceId);
    this.#sendToAdmitted(request('subscribe', subscription));
  }

  unsubscribe(resourceType, resourceId) {
    const id = normalizedId(resourceId);
    this.#subscriptions.delete(keyOf(resourceType, id));
    this.#sendToAdmitted(request('unsubscribe', { resourceType, resourceId: id }));
  }

  /** Sends a message of the application (e.g. `{type: 'system_status'}`); false if not connected. */
  send(message) {
    return this.#sendToAdmitted(message);
  }

  // Connection loop -----------------------------------------------------------------

  async #connect() {
    this.#status = 'connecting';
    this.#attempts += 1;
    this.#failures += 1;
    const base = this.#urls[(this.#attempts - 1) % this.#urls.length];
    let token;
    try {
      token = await this.#token();
    } catch (error) {
      if (this.#status === 'closed') return;
      this.#ended({ code: null, reason: `token: ${error?.message ?? error}`, admitted: false });
      return;
    }
    if (this.#status === 'closed') return;
    if (this.#refusal !== null && token === this.#refusal.token) {
      // Asking again brought nothing new: the same token would be refused again.
      this.#giveUp({ code: POLICY_VIOLATION, reason: 'token refused, and the token function returned the same token again' });
      return;
    }

    const url = new URL(base);
    if (token != null) url.searchParams.set('token', String(token));
    url.searchParams.delete('session');
    url.searchParams.delete('cursor');
    const resuming = this.#options.resume && this.#sessionId !== null;
    if (resuming) {
      url.searchParams.set('session', this.#sessionId);
      if (this.#cursor !== null) url.searchParams.set('cursor', this.#cursor);
    }
    // A reconnect that will not resume has lost the events sent meanwhile: say so once admitted.
    const loss = this.#everAdmitted && !resuming ? (this.#sessionLost ?? 'resume_disabled') : null;

    let socket;
    try {
      socket = new this.#WebSocket(url.toString());
    } catch (error) {
      this.#ended({ code: null, reason: String(error?.message ?? error), admitted: false });
      return;
    }
    const connection = {
      socket, token, opened: false, admitted: false, resuming, loss, sessionRefused: false, finished: false, connectTimer: null, errorTimer: null,
    };
    this.#connection = connection;

    const finish = (code, reason) => {
      if (connection.finished) return;
      connection.finished = true;
      clearTimeout(connection.connectTimer);
      clearTimeout(connection.errorTimer);
      if (this.#connection === connection) this.#connection = null;
      if (socket.readyState !== 3) {
        try { socket.close(NORMAL_CLOSURE); } catch { /* already closing */ }
      }
      this.#ended({ code, reason, admitted: connection.admitted, connection });
    };
    connection.connectTimer = setTimeout(() => finish(null, 'connect timeout'), this.#options.connectTimeout);
    socket.addEventListener('open', () => {
      connection.opened = true;
      clearTimeout(connection.connectTimer);
    });
    socket.addEventListener('message', (event) => {
      if (!connection.finished) this.#receive(connection, event.data);
    });
    socket.addEventListener('close', (event) => {
      const fallback = connection.opened ? 'connection lost' : 'connection failed';
      finish(event.code ?? null, event.reason || fallback);
    });
    // Browsers follow an 'error' with a 'close' that carries the code; Node 20's WebSocket
    // does not when the connection is refused, so a failed dial ends here, and an error
    // on an open socket gives the close a moment to arrive.
    socket.addEventListener('error', () => {
      if (!connection.opened) {
        finish(1006, 'connection failed');
      } else {
        connection.errorTimer ??= setTimeout(() => finish(1006, 'connection lost'), 1000);
      }
    });
  }

  async #token() {
    const { token } = this.#options;
    return typeof token === 'function' ? await token() : token;
  }

  /** A connection ended (or never began): schedule the next attempt, or give up. */
  #ended({ code, reason, admitted, connection = null }) {
    if (this.#status === 'closed') return;
    if (admitted) {
      this.#failures = 0;
      this.#backoff = this.#options.initialBackoff;
    }
    if (code === POLICY_VIOLATION && connection && !admitted && !connection.sessionRefused) {
      // Refused at the door: the same token would be refused forever. Only a token
      // function can bring a new one, and it gets one chance.
      if (typeof this.#options.token !== 'function' || this.#refusal !== null) {
        this.#giveUp({ code, reason });
        return;
      }
      this.#refusal = { token: connection.token };
    }
    const { maxBackoff, restartJitter, maxAttempts } = this.#options;
    let retryIn;
    if (code === SERVICE_RESTART) {
      // The server is restarting and spreads its closes itself; only break up ties.
      retryIn = Math.round(restartJitter * Math.random());
    } else {
      retryIn = Math.round(Math.min(this.#backoff, maxBackoff) * (0.5 + Math.random() / 2));
      this.#backoff = Math.min(this.#backoff * 2, maxBackoff);
    }
    if (this.#failures >= maxAttempts) {
      this.#giveUp({ code, reason });
      return;
    }
    this.#status = 'waiting';
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#connect();
    }, retryIn);
    this.#emit('disconnected', { code, reason, retryIn });
  }

  #giveUp({ code, reason }) {
    this.#status = 'closed';
    this.#refusal = null;
    this.#emit('disconnected', { code, reason, retryIn: null });
  }

  // Inbound ---------------------------------------------------------------------------

  #receive(connection, data) {
    if (typeof data !== 'string') return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') return;
    const action = message.type === 'system_status' ? message.data?.action : undefined;

    if (message.type === 'ping') {
      send(connection.socket, { type: 'pong' });
      return;
    }
    if (!connection.admitted && action === 'connected') {
      this.#admit(connection, message);
      return;
    }
    if (!connection.admitted && message.type === 'error' && connection.resuming && /\bsession\b/i.test(message.error ?? '')) {
      // The server refused our session (it belongs to another user, e.g. after a
      // sign-in as someone else). Retrying it would be refused forever: start afresh.
      this.#sessionId = null;
      this.#cursor = null;
      this.#sessionLost = 'session_refused';
      connection.sessionRefused = true;
    }
    if (typeof message.cursor === 'string') this.#cursor = message.cursor;
    if (action === 'replay_complete') {
      this.#emit('replay_complete', { replayed: Number(message.data.replayed) || 0 });
    } else if (action === 'recovery_failed') {
      this.#emit('recovery_failed', { reason: String(message.data.reason ?? 'unknown') });
    } else {
      this.#emit('message', message);
    }
  }

  #admit(connection, message) {
    const data = message.data;
    connection.admitted = true;
    this.#everAdmitted = true;
    this.#sessionLost = null;
    this.#refusal = null;
    this.#status = 'connected';
    this.#sessionId = typeof data.sessionId === 'string' ? data.sessionId : null;
    if (typeof message.cursor === 'string') this.#cursor = message.cursor;

    // Whatever the server restored, compare with what we want and send the difference.
    const restored = new Set();
    const restoredTypes = new Set();
    for (const item of Array.isArray(data.subscriptions) ? data.subscriptions : []) {
      restored.add(keyOf(item.resourceType, normalizedId(item.resourceId)));
      restoredTypes.add(item.resourceType);
    }
    const missing = [...this.#subscriptions.entries()]
      .filter(([key, s]) => !restored.has(key) && !(s.resourceId === null && restoredTypes.has(s.resourceType)))
      .map(([, s]) => s);

    this.#emit('connected', { sessionId: this.#sessionId, nodeId: String(data.nodeId ?? ''), resumed: data.resumed === true });
    if (connection.finished) return;
    for (const subscription of missing) send(connection.socket, request('subscribe', subscription));
    if (connection.loss) this.#emit('recovery_failed', { reason: connection.loss });
  }

  // Helpers ---------------------------------------------------------------------------

  #remember(resourceType, resourceId) {
    if (typeof resourceType !== 'string' || resourceType === '') throw new TypeError('resourceType must be a non-empty string');
    const subscription = { resourceType, resourceId: normalizedId(resourceId) };
    this.#subscriptions.set(keyOf(subscription.resourceType, subscription.resourceId), subscription);
    return subscription;
  }

  #sendToAdmitted(message) {
    const connection = this.#connection;
    if (!connection?.admitted || connection.finished) return false;
    return send(connection.socket, message);
  }

  #emit(name, detail) {
    for (const listener of [...(this.#listeners.get(name) ?? [])]) {
      try {
        listener(detail);
      } catch (error) {
        // A faulty listener must not break the connection loop; report it as uncaught.
        setTimeout(() => { throw error; });
      }
    }
  }
}

function send(socket, message) {
  if (socket.readyState !== 1) return false;
  try {
    socket.send(JSON.stringify(message));
    return true;
  } catch {
    return false;
  }
}

function request(action, { resourceType, resourceId }) {
  const data = { action, resourceType };
  if (resourceId !== null) data.resourceId = resourceId;
  return { type: 'system_status', data };
}

// `system` and the token's own `user` need no id: null, undefined and '' mean "none".
function normalizedId(resourceId) {
  return resourceId === undefined || resourceId === null || resourceId === '' ? null : String(resourceId);
}

function keyOf(resourceType, resourceId) {
  return `${resourceType}\u0000${resourceId ?? ''}`;
}

function withoutUndefined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}

/** ws(s):// as given; http(s):// mapped to ws(s)://; a path against the page's location. */
function resolveUrl(text) {
  let url;
  if (/^wss?:\/\//i.test(text) || /^https?:\/\//i.test(text)) {
    url = new URL(text);
  } else if (text.startsWith('/') && globalThis.location?.href) {
    url = new URL(text, globalThis.location.href);
  } else {
    throw new TypeError(`not a WebSocket URL: ${text} (a path like /ws needs a page location to resolve against)`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new TypeError(`not a WebSocket URL: ${text}`);
  return url.toString();
}
