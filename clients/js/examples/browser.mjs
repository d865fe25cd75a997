// The client in a page: connect, subscribe, list what arrives, and say what happened to
// the connection. The browser test reads `window.gatewayExample` to check every event came
// exactly once across a failover; a person reads the page.

import { GatewayClient } from '../airavata-client.mjs';

/** How many events the list shows; older ones scroll out. */
const SHOWN_EVENTS = 200;

const query = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// What happened, for the browser test and for the curious (in the console: gatewayExample).
const record = { connections: [], disconnects: [], replays: [], recoveryFailures: [], events: [], errors: [] };
window.gatewayExample = record;
addEventListener('error', (event) => record.errors.push(String(event.message)));
addEventListener('unhandledrejection', (event) => record.errors.push(String(event.reason)));

const urls = query.getAll('url');
if (urls.length === 0) {
  $('status').textContent = 'no gateway';
  $('notice').textContent = 'Add ?url=ws://host:port/ws/user&token=… to this page’s address.';
} else {
  const client = new GatewayClient({ urls, token: query.get('token') });
  for (const item of query.getAll('subscribe')) {
    const [resourceType, resourceId] = item.split(':');
    client.subscribe(resourceType, resourceId || null);
  }
  client.on('connected', (detail) => {
    record.connections.push(detail);
    $('status').textContent = detail.resumed ? 'connected (resumed)' : 'connected';
    $('node').textContent = detail.nodeId;
    $('session').textContent = detail.sessionId ?? '–';
  });
  client.on('disconnected', (detail) => {
    record.disconnects.push(detail);
    $('status').textContent = detail.retryIn === null ? `closed: ${detail.reason}` : `reconnecting in ${detail.retryIn} ms`;
  });
  client.on('replay_complete', (detail) => record.replays.push(detail));
  client.on('recovery_failed', (detail) => {
    record.recoveryFailures.push(detail);
    $('notice').textContent = `Some events were missed (${detail.reason}): reload what you show.`;
  });
  client.on('message', (message) => {
    if (message.type === 'system_status' || message.type === 'error' || message.type === 'pong') {
      if (message.type === 'error') $('notice').textContent = message.error;
      return;
    }
    record.events.push({ type: message.type, cursor: message.cursor ?? null, data: message.data });
    $('count').textContent = String(record.events.length);
    const item = document.createElement('li');
    item.textContent = `${message.timestamp} ${message.type} ${JSON.stringify(message.data)}`;
    $('events').append(item);
    while ($('events').children.length > SHOWN_EVENTS) $('events').firstElementChild.remove();
  });
  $('status').textContent = 'connecting';
  client.start();
  window.gatewayClient = client;
}
