// The React hooks in a page, without a build step: React.createElement instead of JSX, and
// React from the classic scripts react.html loads (in a bundled app, import it).

import { createGatewayHooks } from '../react.mjs';

const { React, ReactDOM } = globalThis;
const { useGatewayClient, useGatewayEvents } = createGatewayHooks(React);
const h = React.createElement;
const query = new URLSearchParams(location.search);
window.gatewayExample = { errors: [] };
addEventListener('error', (event) => window.gatewayExample.errors.push(String(event.message)));

function ExperimentProgress({ urls, token }) {
  // Every progress event, counted without a render per event; the latest one from state.
  const [count, setCount] = React.useState(0);
  const gateway = useGatewayClient({ urls, token });
  useGatewayEvents(gateway.client, {
    onMessage: (message) => {
      if (message.type === 'experiment_progress') setCount((n) => n + 1);
    },
  });
  const last = gateway.lastMessage?.type === 'experiment_progress' ? gateway.lastMessage.data : null;
  const row = (label, id, value) => [h('dt', { key: `${id}-label` }, label), h('dd', { key: id, id }, value)];
  return h('dl', null,
    ...row('Connection', 'status', gateway.status),
    ...row('Node', 'node', gateway.nodeId ?? '–'),
    ...row('Progress events', 'count', String(count)),
    ...row('Completed tasks', 'completed', last ? String(last.completedTasks ?? '?') : '–'),
    ...row('Missed events', 'recovery', gateway.recoveryFailed ? `yes (${gateway.recoveryFailed.reason}): reload` : 'none'));
}

const urls = query.getAll('url');
ReactDOM.createRoot(document.getElementById('root')).render(
  urls.length === 0
    ? h('p', null, 'Add ?url=ws://host:port/ws/experiments/exp-1&token=… to this page’s address.')
    : h(ExperimentProgress, { urls, token: query.get('token') }));
