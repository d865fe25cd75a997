// React bindings for GatewayClient. React is passed in rather than imported, so this
// module has no dependencies and works with any React 16.8+ (or a compatible runtime):
//
//   import * as React from 'react';
//   import { createGatewayHooks } from '@airavata/gateway-client/react';
//   export const { useGatewayClient, useGatewayEvents } = createGatewayHooks(React);
//
// The client is created in an effect (never during render), so StrictMode's double
// mount and server rendering are safe: the first render sees `client: null`.

import { GatewayClient } from './airavata-client.mjs';

const CONNECTION_OPTIONS = ['resume', 'initialBackoff', 'maxBackoff', 'restartJitter', 'maxAttempts', 'connectTimeout'];

const IDLE = Object.freeze({
  status: 'idle',
  sessionId: null,
  nodeId: null,
  resumed: false,
  lastMessage: null,
  recoveryFailed: null,
  lastDisconnect: null,
});

const HANDLERS = {
  message: 'onMessage',
  connected: 'onConnected',
  replay_complete: 'onReplayComplete',
  recovery_failed: 'onRecoveryFailed',
  disconnected: 'onDisconnected',
};

export function createGatewayHooks(React) {
  const { useEffect, useRef, useState } = React;

  /**
   * Keeps one GatewayClient for as long as the component is mounted and the connection
   * options stay the same.
   *
   * options: the GatewayClient options (`url` or `urls`, `token`, `resume`, backoff…),
   * plus `subscriptions` (a list of [resourceType, resourceId] pairs, diffed on every
   * render) and `enabled` (false: no connection).
   *
   * Returns { client, status, sessionId, nodeId, resumed, lastMessage, recoveryFailed,
   * lastDisconnect }. `lastMessage` is only the latest one: React may render once for
   * several messages. To handle every message, use useGatewayEvents.
   */
  function useGatewayClient(options) {
    const { subscriptions = [], enabled = true, token, ...rest } = options;
    const [client, setClient] = useState(null);
    const [snapshot, setSnapshot] = useState(IDLE);

    // The token and the rest are read when a client is made; a new token function on
    // every render must not reconnect, so it lives in a ref that attempts read through.
    const tokenRef = useRef(token);
    tokenRef.current = token;
    const optionsRef = useRef(rest);
    optionsRef.current = rest;
    const wanted = normalize(subscriptions);
    const wantedRef = useRef(wanted);
    wantedRef.current = wanted;
    const appliedRef = useRef(new Map());

    const identity = JSON.stringify([rest.url ?? null, rest.urls ?? null, ...CONNECTION_OPTIONS.map((name) => rest[name] ?? null)]);

    useEffect(() => {
      if (!enabled) return undefined;
      const created = new GatewayClient({
        ...optionsRef.current,
        token: () => {
          const current = tokenRef.current;
          return typeof current === 'function' ? current() : current;
        },
      });
      appliedRef.current = new Map(wantedRef.current);
      for (const [resourceType, resourceId] of appliedRef.current.values()) created.subscribe(resourceType, resourceId);

      const removers = [
        created.on('connected', ({ sessionId, nodeId, resumed }) =>
          setSnapshot((s) => ({ ...s, status: 'connected', sessionId, nodeId, resumed, recoveryFailed: resumed ? null : s.recoveryFailed }))),
        created.on('message', (message) => setSnapshot((s) => ({ ...s, lastMessage: message }))),
        // A new object each time, so that an effect depending on it runs on every failure.
        created.on('recovery_failed', ({ reason }) => setSnapshot((s) => ({ ...s, recoveryFailed: { reason } }))),
        created.on('disconnected', (detail) =>
          setSnapshot((s) => ({ ...s, status: detail.retryIn === null ? 'closed' : 'reconnecting', lastDisconnect: detail }))),
      ];
      setSnapshot({ ...IDLE, status: 'connecting' });
      setClient(created);
      created.start();
      return () => {
        for (const remove of removers) remove();
        created.close();
        setClient((current) => (current === created ? null : current));
        setSnapshot(IDLE);
      };
    }, [identity, enabled]);

    // Subscriptions are diffed against what this client was given, so a changed list
    // sends only the changes.
    const wantedKey = JSON.stringify([...wanted.keys()]);
    useEffect(() => {
      if (!client) return;
      const applied = appliedRef.current;
      for (const [key, [resourceType, resourceId]] of applied) {
        if (!wanted.has(key)) client.unsubscribe(resourceType, resourceId);
      }
      for (const [key, [resourceType, resourceId]] of wanted) {
        if (!applied.has(key)) client.subscribe(resourceType, resourceId);
      }
      appliedRef.current = new Map(wanted);
    }, [client, wantedKey]);

    return { client, ...snapshot };
  }

  /**
   * Calls handlers for every event of a client without re-rendering. `handlers` is a
   * function (every message) or { onMessage, onConnected, onReplayComplete,
   * onRecoveryFailed, onDisconnected }; the latest handlers are used, so inline
   * functions are fine.
   */
  function useGatewayEvents(client, handlers) {
    const handlersRef = useRef(handlers);
    handlersRef.current = handlers;
    useEffect(() => {
      if (!client) return undefined;
      const removers = Object.entries(HANDLERS).map(([name, property]) =>
        client.on(name, (detail) => {
          const current = handlersRef.current;
          const handler = typeof current === 'function' ? (name === 'message' ? current : null) : current?.[property];
          if (handler) handler(detail);
        }));
      return () => {
        for (const remove of removers) remove();
      };
    }, [client]);
  }

  return { useGatewayClient, useGatewayEvents };
}

/** [[type, id], {resourceType, resourceId}, …] → Map key → [type, id]. */
function normalize(subscriptions) {
  const result = new Map();
  for (const item of subscriptions) {
    const [resourceType, resourceId] = Array.isArray(item) ? item : [item.resourceType, item.resourceId];
    const id = resourceId === undefined || resourceId === '' ? null : resourceId;
    result.set(`${resourceType}\u0000${id ?? ''}`, [resourceType, id]);
  }
  return result;
}
