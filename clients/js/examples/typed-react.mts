// The React hooks with React's own types (Debian's node-react ships them), checked with
// `tsc --noEmit --strict` in CI (.ci/js-client) beside typed-usage.mts.

import * as React from 'react';
import { createGatewayHooks, type GatewayConnectionState } from '@airavata/gateway-client/react';

// React's real hooks fit the runtime the hooks are made with.
const { useGatewayClient, useGatewayEvents } = createGatewayHooks(React);

export function ExperimentProgress({ experimentId, token }: { experimentId: string; token: () => Promise<string> }) {
  const [percent, setPercent] = React.useState<number | null>(null);
  const gateway: GatewayConnectionState = useGatewayClient({
    url: `/ws/experiments/${experimentId}`,
    token,
    subscriptions: [['user']],
    enabled: experimentId !== '',
  });
  useGatewayEvents(gateway.client, {
    onMessage: (message) => {
      if (message.type === 'experiment_progress') setPercent(message.data.progressPercent ?? null);
    },
    onRecoveryFailed: ({ reason }) => console.log(reason),
  });
  useGatewayEvents(gateway.client, (message) => console.log(message.type));
  // @ts-expect-error: the hook's states are not the client's
  const waiting: typeof gateway.status = 'waiting';
  return React.createElement('div', null, `${gateway.status} ${gateway.nodeId ?? ''} ${percent ?? ''} ${waiting}`);
}
