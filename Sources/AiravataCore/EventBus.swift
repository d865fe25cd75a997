package import NIOCore

/// Carries accepted events to every node that may have interested clients.
///
/// Implementations must hand events to the sink one at a time, in the order their
/// cursors were assigned: the gateway relies on it for per-connection ordering.
package protocol EventBus: Sendable {
    /// Appends the events to the replay log and publishes them, atomically and in order.
    /// Returns each event's cursor.
    func publish(_ events: [GatewayEvent]) async throws -> [String]

    /// The same, answered on `loop` without a task where the bus can: ingestion on an event
    /// loop stays there.
    func publish(_ events: [GatewayEvent], on loop: any EventLoop) -> EventLoopFuture<[String]>

    /// The same with a callback on `loop` instead of a future: ingestion's hot path.
    func publish(
        _ events: [GatewayEvent], on loop: any EventLoop,
        then complete: @escaping @Sendable (Result<[String], any Error>) -> Void)

    /// Publishes like `publish`, except that an event whose producer id (`producerIDs[i]`,
    /// nil for none) was accepted within the deduplication window is not published again: its
    /// answer is the cursor it was first accepted with, marked duplicate. The check and the
    /// append are one atomic step, so that two nodes cannot both accept one id.
    func publishOnce(_ events: [GatewayEvent], producerIDs: [String?]) async throws -> [Publication]

    /// The same, answered on `loop` without a task where the bus can.
    func publishOnce(_ events: [GatewayEvent], producerIDs: [String?], on loop: any EventLoop)
        -> EventLoopFuture<[Publication]>

    /// Starts delivering to `sink`; returns when the bus stops.
    func run(sink: @escaping @Sendable (DeliveredEvent) -> Void) async throws

    func health() -> EventBusHealth

    /// Reads at most `limit` entries of the replay log after `start`; fewer means the read
    /// reached the log's current end. Callers read on in chunks from the last cursor read.
    func readLog(from start: EventCursor, limit: Int) async throws -> LogRead

    /// Which of these cursors the replay log still holds (cheap: no range is read).
    func logHolds(_ cursors: [EventCursor]) async throws -> Set<EventCursor>

    /// The newest cursor in the replay log; creates the log's first entry when it is empty,
    /// so that every client can be given a cursor from its first moment.
    func logTip() async throws -> EventCursor

    /// Registers what to call when the bus finds that the replay log was lost, rewound or
    /// started again (a new epoch): events a node saw, or should have seen, before it may be
    /// missing from the log now, and this node's clients may have missed some. The handlers
    /// run in the order registered, with the node's position at that moment, after every
    /// event delivered at or below it and before any later one.
    func onLogReset(_ handler: @escaping @Sendable (EventCursor?) -> Void)
}

extension EventBus {
    package func publish(
        _ events: [GatewayEvent], on loop: any EventLoop,
        then complete: @escaping @Sendable (Result<[String], any Error>) -> Void
    ) {
        publish(events, on: loop).whenComplete(complete)
    }

    package func publish(_ events: [GatewayEvent], on loop: any EventLoop) -> EventLoopFuture<[String]> {
        loop.makeFutureWithTask { try await self.publish(events) }
    }

    package func publishOnce(_ events: [GatewayEvent], producerIDs: [String?], on loop: any EventLoop)
        -> EventLoopFuture<[Publication]>
    {
        loop.makeFutureWithTask { try await self.publishOnce(events, producerIDs: producerIDs) }
    }

    /// An in-process log cannot be lost while the process runs.
    package func onLogReset(_ handler: @escaping @Sendable (EventCursor?) -> Void) {}
}

/// One entry of the replay log. `event` is nil for the entry that opens the log (its
/// epoch mark): a log lost with Redis comes back with a new one, so no old cursor is found
/// in it and resuming clients learn that recovery failed.
package struct LogEntry: Sendable {
    package var cursor: EventCursor
    package var event: RoutedEvent?

    package init(cursor: EventCursor, event: RoutedEvent?) {
        self.cursor = cursor
        self.event = event
    }
}

/// What a read of the replay log found.
package struct LogRead: Sendable {
    /// Whether the log still holds the entry at the start cursor; when it does not, the
    /// events after that cursor are no longer all there.
    package var holdsStart: Bool
    /// The entries after the start cursor, oldest first, up to the read's limit.
    package var entries: [LogEntry]

    package init(holdsStart: Bool, entries: [LogEntry]) {
        self.holdsStart = holdsStart
        self.entries = entries
    }
}

extension EventBus {
    /// An in-process bus is healthy while the process runs.
    package func health() -> EventBusHealth {
        EventBusHealth(ready: true)
    }
}

/// The bus cannot take events now (for example, Redis is unreachable).
package struct EventBusUnavailableError: Error, Sendable, CustomStringConvertible {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}
