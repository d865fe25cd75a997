// A plain protocol client, written the way a portal uses the browser WebSocket API:
// token in the query string, a subscribe message once open, and a switch on `type`.
// It runs unchanged in browsers and under `node --experimental-websocket` (Node 20+).
//
// Command line (used by the gateway's tests):
//   node --experimental-websocket basic-client.mjs --url ws://127.0.0.1:8080 \
//        --token JWT --experiment exp-1 [--count 3]
// It prints one JSON line per notable message and exits after --count events.

export class BasicAiravataClient {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl;
    this.token = token;
    this.handlers = {};
  }

  on(type, handler) {
    this.handlers[type] = handler;
    return this;
  }

  watchExperiment(experimentId) {
    const url = `${this.baseUrl}/ws/experiments/${encodeURIComponent(experimentId)}?token=${encodeURIComponent(this.token)}`;
    const socket = new WebSocket(url);
    socket.onopen = () => {
      socket.send(JSON.stringify({
        type: 'system_status',
        data: { action: 'subscribe', resourceType: 'experiment', resourceId: experimentId },
      }));
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      switch (message.type) {
        case 'ping':
          socket.send(JSON.stringify({ type: 'pong', id: `pong-${Date.now()}`, timestamp: new Date().toISOString() }));
          break;
        case 'error':
          this.emit('error', message);
          break;
        case 'system_status':
          if (message.data && message.data.action === 'subscribed') this.emit('subscribed', message);
          else this.emit('status', message);
          break;
        default:
          this.emit('event', message);
      }
    };
    socket.onclose = (event) => this.emit('close', { code: event.code, reason: event.reason });
    this.socket = socket;
    return socket;
  }

  emit(kind, payload) {
    const handler = this.handlers[kind];
    if (handler) handler(payload);
  }

  close() {
    if (this.socket) this.socket.close();
  }
}

function parseArguments(argv) {
  const options = { count: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    options[name] = argv[i + 1];
  }
  options.count = Number(options.count);
  return options;
}

const isMain = typeof process !== 'undefined' && process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop());
if (isMain) {
  const options = parseArguments(process.argv.slice(2));
  if (!options.url || !options.token || !options.experiment) {
    console.error('usage: basic-client.mjs --url ws://host:port --token JWT --experiment ID [--count N]');
    process.exit(2);
  }
  if (typeof WebSocket === 'undefined') {
    console.error('no global WebSocket: run with node --experimental-websocket (Node 20.10+)');
    process.exit(2);
  }
  const client = new BasicAiravataClient(options.url, options.token);
  let received = 0;
  const print = (kind, message) => console.log(JSON.stringify({ kind, message }));
  client
    .on('subscribed', (message) => print('subscribed', message))
    .on('error', (message) => print('error', message))
    .on('event', (message) => {
      print('event', message);
      received += 1;
      if (received >= options.count) {
        client.close();
      }
    })
    .on('close', (info) => {
      print('close', info);
      process.exit(received >= options.count ? 0 : 1);
    });
  client.watchExperiment(options.experiment);
  setTimeout(() => {
    print('timeout', { received });
    process.exit(3);
  }, 30000).unref();
}
