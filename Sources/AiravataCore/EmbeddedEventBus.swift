package import NIOCore
import Synchronization

/// The in-process bus of a single node: cursors count up from the node's start time,
/// delivery is synchronous, and the replay log is a ring of the newest events.
package final class EmbeddedEventBus: EventBus {
    private struct State {
        var sequence: UInt64 = 0
        var sink: (@Sendable (DeliveredEvent) -> Void)?
        var log: CursorRing<LogEntry>
        var recentIDs: RecentProducerIDs
    }

    /// One lock serialises cursor assignment and delivery, so cursor order is delivery order.
    private let state: Mutex<State>
    /// The log's epoch: a restarted node starts a new one, so its predecessor's cursors
    /// are never mistaken for its own.
    private let epoch: UInt64
    private let deduplicates: Bool

    package init(
        replayLength: Int = 10_000, deduplication: Deduplication = Deduplication(),
        nowMicros: Int64 = WallClock.nowMicros()
    ) {
        let epoch = UInt64(max(nowMicros / 1000, 1))
        self.epoch = epoch
        var log = CursorRing<LogEntry>(capacity: replayLength)
        log.append(LogEntry(cursor: EventCursor(milliseconds: epoch, sequence: 0), event: nil))
        state = Mutex(State(log: log, recentIDs: RecentProducerIDs(policy: deduplication)))
        self.deduplicates = deduplication.isEnabled
    }

    package func publish(_ events: [GatewayEvent]) async throws -> [String] {
        publishNow(events)
    }

    /// Synchronous: delivery happens under the lock, before this returns.
    package func publish(_ events: [GatewayEvent], on loop: any EventLoop) -> EventLoopFuture<[String]> {
        loop.makeSucceededFuture(publishNow(events))
    }

    package func publishOnce(_ events: [GatewayEvent], producerIDs: [String?]) async throws -> [Publication] {
        publishOnceNow(events, producerIDs: producerIDs)
    }

    package func publishOnce(_ events: [GatewayEvent], producerIDs: [String?], on loop: any EventLoop)
        -> EventLoopFuture<[Publication]>
    {
        loop.makeSucceededFuture(publishOnceNow(events, producerIDs: producerIDs))
    }

    private func publishNow(_ events: [GatewayEvent]) -> [String] {
        state.withLock { state in events.map { append($0, state: &state) } }
    }

    /// The check and the append under one lock: two requests cannot both accept one id.
    private func publishOnceNow(_ events: [GatewayEvent], producerIDs: [String?]) -> [Publication] {
        guard deduplicates else { return publishNow(events).map { Publication(cursor: $0) } }
        let nowMillis = WallClock.nowMicros() / 1000
        return state.withLock { state in
            zip(events, producerIDs).map { event, producerID in
                guard let producerID else { return Publication(cursor: append(event, state: &state)) }
                if let first = state.recentIDs.cursor(of: producerID, nowMillis: nowMillis) {
                    return Publication(cursor: first, duplicate: true)
                }
                let cursor = append(event, state: &state)
                state.recentIDs.remember(producerID, cursor: cursor, nowMillis: nowMillis)
                return Publication(cursor: cursor)
            }
        }
    }

    private func append(_ accepted: GatewayEvent, state: inout State) -> String {
        let event = accepted.routed
        state.sequence += 1
        let cursor = EventCursor(milliseconds: epoch, sequence: state.sequence)
        state.log.append(LogEntry(cursor: cursor, event: event))
        state.sink?(DeliveredEvent(event: event, cursor: cursor))
        return cursor.description
    }

    package func run(sink: @escaping @Sendable (DeliveredEvent) -> Void) async throws {
        state.withLock { $0.sink = sink }
        defer { state.withLock { $0.sink = nil } }
        // Nothing to run: park until cancelled (graceful shutdown).
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(3600))
        }
    }

    package func readLog(from start: EventCursor, limit: Int) async throws -> LogRead {
        state.withLock { state in
            let live = state.log.entries
            guard let position = state.log.position(of: start) else {
                return LogRead(holdsStart: false, entries: Array(live.drop { $0.cursor <= start }.prefix(limit)))
            }
            return LogRead(holdsStart: true, entries: Array(live[(position + 1)...].prefix(limit)))
        }
    }

    package func logHolds(_ cursors: [EventCursor]) async throws -> Set<EventCursor> {
        state.withLock { state in Set(cursors.filter { state.log.position(of: $0) != nil }) }
    }

    package func logTip() async throws -> EventCursor {
        state.withLock { $0.log.newest?.cursor ?? EventCursor(milliseconds: epoch, sequence: 0) }
    }
}
