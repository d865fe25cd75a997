// Type declarations for airavata-client.mjs, written by hand: keep them in step with the
// module and with docs/protocol.md. `tsc --noEmit --strict` checks them against
// examples/typed-usage.mts in CI (.ci/js-client).

// ---------------------------------------------------------------------------------------
// The wire protocol (docs/protocol.md)
// ---------------------------------------------------------------------------------------

/** What a subscription can name. `worker` and `system` are for admins. */
export type ResourceType = 'experiment' | 'task' | 'project' | 'user' | 'system' | 'worker';

/** The members every server message has. */
export interface MessageBase<Type extends string> {
  type: Type;
  /** e.g. `exp_exp-1_1764950400123` for an event, `system_…`, `error-…` */
  id: string;
  /** ISO 8601 UTC, e.g. `2026-11-26T17:14:13Z` */
  timestamp: string;
  /**
   * [added] The message's position in the cluster's replay log (`<ms>-<seq>`; treat it as
   * opaque). Events carry one, and so do `connected`, `replay_complete` and `recovery_failed`.
   */
  cursor?: string;
}

// Events. Their `data` is exactly what the producer sent: the gateway checks only the id
// that routes it (required below); the other members are the protocol's shape.

export interface Experiment {
  id: string;
  name?: string;
  status?: string;
  ownerId?: string;
  projectId?: string;
  [member: string]: unknown;
}

export interface ExperimentSummary {
  id?: string;
  name?: string;
  status?: string;
  ownerId?: string;
  [member: string]: unknown;
}

export type ExperimentEventType = 'experiment_created' | 'experiment_updated' | 'experiment_completed' | 'experiment_failed';

export interface ExperimentEvent extends MessageBase<ExperimentEventType> {
  data: { experiment: Experiment; summary?: ExperimentSummary; [member: string]: unknown };
}

export interface ExperimentProgressEvent extends MessageBase<'experiment_progress'> {
  data: {
    experimentId: string;
    totalTasks?: number;
    completedTasks?: number;
    failedTasks?: number;
    runningTasks?: number;
    progressPercent?: number;
    /** e.g. `"1h 30m"` */
    estimatedTimeRemaining?: string;
    lastUpdated?: string;
    [member: string]: unknown;
  };
}

export interface Task {
  id: string;
  experimentId?: string;
  status?: string;
  command?: string;
  workerId?: string | null;
  /** On `task_failed`. */
  error?: string;
  [member: string]: unknown;
}

export interface TaskSummary {
  id?: string;
  experimentId?: string;
  status?: string;
  workerId?: string | null;
  error?: string;
  [member: string]: unknown;
}

export type TaskEventType = 'task_created' | 'task_updated' | 'task_completed' | 'task_failed';

export interface TaskEvent extends MessageBase<TaskEventType> {
  data: { task: Task; summary?: TaskSummary; [member: string]: unknown };
}

export interface TaskProgressEvent extends MessageBase<'task_progress'> {
  data: {
    taskId: string;
    experimentId?: string;
    status?: string;
    progressPercent?: number;
    currentStage?: string;
    workerId?: string | null;
    startedAt?: string;
    estimatedCompletion?: string;
    lastUpdated?: string;
    [member: string]: unknown;
  };
}

export interface Worker {
  id: string;
  computeResourceId?: string;
  experimentId?: string;
  status?: string;
  currentTaskId?: string | null;
  [member: string]: unknown;
}

export type WorkerEventType = 'worker_registered' | 'worker_updated' | 'worker_offline';

/** Reaches admins only (`worker` and `system` subscriptions). */
export interface WorkerEvent extends MessageBase<WorkerEventType> {
  data: { worker: Worker; summary?: Partial<Worker>; [member: string]: unknown };
}

/** [added] Reaches that user's subscribers only. */
export interface UserNotificationEvent extends MessageBase<'user_notification'> {
  data: { userId: string; title?: string; message?: string; level?: string; [member: string]: unknown };
}

/** Every event a producer can publish, except `system_status` (see SystemStatusMessage). */
export type GatewayEvent =
  | ExperimentEvent
  | ExperimentProgressEvent
  | TaskEvent
  | TaskProgressEvent
  | WorkerEvent
  | UserNotificationEvent;

// system_status: one type, several meanings told apart by `data.action`.

/** The statistics, every stats interval and in answer to `{type: "system_status"}`. */
export interface SystemStatistics {
  action?: undefined;
  totalConnections: number;
  activeConnections: number;
  /** Events routed. */
  totalMessages: number;
  messagesPerSecond: number;
  /** e.g. `"0.000193s"`: acceptance to hand-off */
  averageLatency: string;
  /** e.g. `"2h 30m 15s"` */
  uptime: string;
  /** [added] Frames handed to connections. */
  deliveries?: number;
  /** [added] */
  nodeId?: string;
}

/** The answer to a subscribe or unsubscribe request. */
export interface SubscriptionAnswer {
  action: 'subscribed' | 'unsubscribed';
  resourceType: ResourceType;
  resourceId?: string;
  status: 'success';
}

/** [added] The node is shutting down: close 1012 follows; the client reconnects by itself. */
export interface ReconnectNotice {
  action: 'reconnect';
  [member: string]: unknown;
}

/**
 * A `system_status` a producer published, broadcast to every connection. It cannot carry
 * an action the gateway uses itself.
 */
export interface ProducerSystemStatus {
  action?: undefined;
  [member: string]: unknown;
}

export interface SystemStatusMessage extends MessageBase<'system_status'> {
  data: SystemStatistics | SubscriptionAnswer | ReconnectNotice | ProducerSystemStatus;
}

/** [added] The first message of every admitted connection. The client turns it into `connected`. */
export interface ConnectedMessage extends MessageBase<'system_status'> {
  data: {
    action: 'connected';
    /** 32 hex digits */
    sessionId: string;
    nodeId: string;
    resumed: boolean;
    subscriptions: Array<{ resourceType: ResourceType; resourceId?: string }>;
  };
}

/** [added] The missed events of a resume have all been sent. The client turns it into `replay_complete`. */
export interface ReplayCompleteMessage extends MessageBase<'system_status'> {
  data: { action: 'replay_complete'; replayed: number };
}

/** Why not everything missed could be given back. */
export type ServerRecoveryFailure =
  | 'session_expired'
  | 'cursor_out_of_window'
  | 'invalid_cursor'
  | 'replay_unavailable'
  | 'replay_too_large'
  /** Sent unasked to connected clients: the cluster's replay log lost events (a Redis failover). */
  | 'log_rewound';

/** [added] Some missed events cannot be delivered. The client turns it into `recovery_failed`. */
export interface RecoveryFailedMessage extends MessageBase<'system_status'> {
  data: { action: 'recovery_failed'; reason: ServerRecoveryFailure };
}

/** A refusal, or an answer to a bad request. */
export interface ErrorMessage extends MessageBase<'error'> {
  /**
   * e.g. `Authentication required`, `Invalid or expired token`, `Invalid message format`,
   * `Unknown message type`, `Rate limit exceeded`, `Not authorized for project p-2`,
   * `Session belongs to another user`, `Connection limit exceeded: …`
   */
  error: string;
  /** [added] On a refused subscription: what was asked. */
  data?: { action: 'subscribe' | 'unsubscribe'; resourceType: string; resourceId?: string; status: 'error' };
}

/** The server's heartbeat. The client answers it and does not pass it on. */
export interface PingMessage extends MessageBase<'ping'> {}

/** The answer to a ping the application sent. */
export interface PongMessage extends MessageBase<'pong'> {}

/** Everything the server sends. */
export type ServerMessage =
  | GatewayEvent
  | SystemStatusMessage
  | ConnectedMessage
  | ReplayCompleteMessage
  | RecoveryFailedMessage
  | ErrorMessage
  | PingMessage
  | PongMessage;

/**
 * What the `message` event delivers: every server message except `ping` and the ones the
 * client turns into its own events (`connected`, `replay_complete`, `recovery_failed`).
 */
export type ApplicationMessage = GatewayEvent | SystemStatusMessage | ErrorMessage | PongMessage;

/** Subscribe or unsubscribe. `resourceId` may be left out for `system` and for your own `user`. */
export interface SubscriptionRequest {
  type: 'system_status';
  data: { action: 'subscribe' | 'unsubscribe'; resourceType: ResourceType; resourceId?: string };
}

/** [added] Asks for the statistics. */
export interface StatisticsRequest {
  type: 'system_status';
  data?: undefined;
}

export interface PingRequest {
  type: 'ping';
  id?: string;
  timestamp?: string;
}

export interface PongReply {
  type: 'pong';
  id?: string;
  timestamp?: string;
}

/** Everything a client may send. */
export type ClientMessage = SubscriptionRequest | StatisticsRequest | PingRequest | PongReply;

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

/** The socket the client drives: the browser's, Node's global one, or a compatible one such as `ws`'s. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** A token, or where to get one. */
export type TokenSource =
  | string
  | null
  | undefined
  | (() => string | null | undefined | PromiseLike<string | null | undefined>);

/** `['experiment', 'exp-1']`, `['user']`, or `{ resourceType, resourceId }`. */
export type SubscriptionSpec =
  | readonly [resourceType: ResourceType, resourceId?: string | null]
  | { resourceType: ResourceType; resourceId?: string | null };

export interface Subscription {
  resourceType: ResourceType;
  /** null for `system` and for the token's own `user`. */
  resourceId: string | null;
}

/** Every option but where to connect. */
export interface GatewayClientSettings {
  /**
   * A string, or a function (sync or async) called before every attempt. After a 1008
   * refusal (bad or expired token) a string token ends the client; a function is asked
   * once for a fresh token, and the client gives up if that one is refused too (or is
   * the same token).
   */
  token?: TokenSource;
  /** Resume the session after a reconnect (default true). */
  resume?: boolean;
  /** Subscriptions to start with. */
  subscriptions?: readonly SubscriptionSpec[];
  /** ms before the first retry; doubles on each failure (default 500). */
  initialBackoff?: number;
  /** ms, the longest wait (default 30000). */
  maxBackoff?: number;
  /** ms: after a 1012 close, wait a random 0…this (default 250). */
  restartJitter?: number;
  /** Consecutive attempts without admission before giving up (default Infinity; null means no limit). */
  maxAttempts?: number | null;
  /** ms to wait for the socket to open (default 10000). */
  connectTimeout?: number;
  /** The constructor to use (default `globalThis.WebSocket`). */
  WebSocket?: WebSocketConstructor;
}

/**
 * `url`: `ws(s)://`, `http(s)://` (mapped) or, in a browser, a path such as `/ws`.
 * `urls`: several, used in turn. At least one of the two.
 */
export type GatewayClientOptions = GatewayClientSettings &
  ({ url: string; urls?: readonly string[] } | { url?: string; urls: readonly [string, ...string[]] });

export type ClientStatus = 'idle' | 'connecting' | 'connected' | 'waiting' | 'closed';

export interface ConnectedDetail {
  sessionId: string | null;
  nodeId: string;
  /** true: the session came back, with its subscriptions and the missed events that follow. */
  resumed: boolean;
}

export interface DisconnectedDetail {
  /** The close code: 1006 failed or dropped, 1012 server restart, 1008 refused, null before any socket. */
  code: number | null;
  reason: string;
  /** ms before the next attempt; null when the client has given up. */
  retryIn: number | null;
}

export interface ReplayCompleteDetail {
  replayed: number;
}

/**
 * Refetch what you show: events from the time away (or, with `log_rewound`, lost by the
 * cluster while connected) were missed. `resume_disabled` and
 * `session_refused` are the client's own; the others come from the server.
 */
export type RecoveryFailure = ServerRecoveryFailure | 'resume_disabled' | 'session_refused';

export interface RecoveryFailedDetail {
  reason: RecoveryFailure;
}

/** The events of `on()`, with what their listeners get. */
export interface GatewayClientEvents {
  connected: ConnectedDetail;
  message: ApplicationMessage;
  replay_complete: ReplayCompleteDetail;
  recovery_failed: RecoveryFailedDetail;
  disconnected: DisconnectedDetail;
}

export type GatewayClientEventName = keyof GatewayClientEvents;

/** The names `on()` accepts. */
export declare const EVENTS: readonly GatewayClientEventName[];

export declare class GatewayClient {
  constructor(options: GatewayClientOptions);
  constructor(url: string, options?: GatewayClientSettings & { urls?: readonly string[] });

  readonly status: ClientStatus;
  /** The session to resume, once the server has assigned one. */
  readonly sessionId: string | null;
  /** The cursor of the last message that carried one. */
  readonly cursor: string | null;
  /** The explicit subscriptions the client keeps (a copy). */
  readonly subscriptions: Subscription[];

  /** Adds a listener; returns a function that removes it. */
  on<Name extends GatewayClientEventName>(name: Name, listener: (detail: GatewayClientEvents[Name]) => void): () => void;
  off<Name extends GatewayClientEventName>(name: Name, listener: (detail: GatewayClientEvents[Name]) => void): void;
  once<Name extends GatewayClientEventName>(name: Name, listener: (detail: GatewayClientEvents[Name]) => void): () => void;

  /** Starts connecting; a second call does nothing. */
  start(): this;
  /** Closes for good; settles when the socket has closed. Emits no `disconnected`. */
  close(): Promise<void>;

  /** Sent now if connected, and again whenever a connection did not bring it back. */
  subscribe(resourceType: ResourceType, resourceId?: string | null): void;
  unsubscribe(resourceType: ResourceType, resourceId?: string | null): void;
  /** false when not connected. */
  send(message: ClientMessage): boolean;
}
