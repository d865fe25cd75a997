// Type declarations for react.mjs, written by hand: keep them in step with the module.

import type {
  ApplicationMessage,
  ConnectedDetail,
  DisconnectedDetail,
  GatewayClient,
  GatewayClientOptions,
  RecoveryFailedDetail,
  ReplayCompleteDetail,
  SubscriptionSpec,
} from './airavata-client.mjs';

/**
 * The part of React the hooks use; `import * as React from 'react'` fits (React 16.8+), and
 * so does any runtime with the same hook semantics.
 */
export interface HooksRuntime {
  useState<S>(initial: S | (() => S)): [S, (next: S | ((previous: S) => S)) => void];
  useRef<T>(initial: T): { current: T };
  useEffect(effect: () => void | (() => void), deps?: readonly unknown[]): void;
}

/**
 * The client options, plus `subscriptions` (diffed on every render; changes are sent)
 * and `enabled` (false: no connection). The client is recreated only when `url`, `urls`
 * or a connection option changes; the token is read through a ref, so a new token
 * function does not reconnect.
 */
export type UseGatewayClientOptions = GatewayClientOptions & {
  subscriptions?: readonly SubscriptionSpec[];
  enabled?: boolean;
};

export type HookStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface GatewayConnectionState {
  /** null on the first render (the client is made in an effect) and while disabled. */
  client: GatewayClient | null;
  status: HookStatus;
  sessionId: string | null;
  nodeId: string | null;
  resumed: boolean;
  /** Only the latest: React may render once for several messages. Use useGatewayEvents for all. */
  lastMessage: ApplicationMessage | null;
  /** A new object on every failure; null again after a resumed connection. */
  recoveryFailed: RecoveryFailedDetail | null;
  lastDisconnect: DisconnectedDetail | null;
}

export interface GatewayEventHandlers {
  onMessage?: (message: ApplicationMessage) => void;
  onConnected?: (detail: ConnectedDetail) => void;
  onReplayComplete?: (detail: ReplayCompleteDetail) => void;
  onRecoveryFailed?: (detail: RecoveryFailedDetail) => void;
  onDisconnected?: (detail: DisconnectedDetail) => void;
}

export interface GatewayHooks {
  useGatewayClient(options: UseGatewayClientOptions): GatewayConnectionState;
  /** Calls the latest handlers for every event, without re-rendering. A function handles messages. */
  useGatewayEvents(client: GatewayClient | null, handlers: GatewayEventHandlers | ((message: ApplicationMessage) => void)): void;
}

export declare function createGatewayHooks(React: HooksRuntime): GatewayHooks;
