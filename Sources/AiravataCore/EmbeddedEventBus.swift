import Synchronization

/// The in-process bus of a single node: cursors count up from the node's start time,
/// delivery is synchronous, and the replay log is a ring of the newest events.
package final class EmbeddedEventBus: EventBus {
    private struct State {
        var sequence: UInt64 = 0
        var sink: (@Sendable (DeliveredEvent) -> Void)?
        /// The newest `capacity` events, oldest first, starting at `first`.
        var log: [LogEntry] = []
        var first = 0
    }

    /// One lock serialises cursor assignment and delivery, so cursor order is delivery order.
    private let state = Mutex(State())
    /// The log's epoch: a restarted node starts a new one, so its predecessor's cursors
    /// are never mistaken for its own.
    private let epoch: UInt64
    private let capacity: Int

    package init(replayLength: Int = 10_000, nowMicros: Int64 = WallClock.nowMicros()) {
        self.epoch = UInt64(max(nowMicros / 1000, 1))
        self.capacity = max(replayLength, 1)
        state.withLock { $0.log = [LogEntry(cursor: EventCursor(milliseconds: epoch, sequence: 0), event: nil)] }
    }

    package func publish(_ events: [GatewayEvent]) async throws -> [String] {
        state.withLock { state in
            events.map { event in
                state.sequence += 1
                let cursor = EventCursor(milliseconds: epoch, sequence: state.sequence)
                append(LogEntry(cursor: cursor, event: event), to: &state)
                state.sink?(DeliveredEvent(event: event, cursor: cursor))
                return cursor.description
            }
        }
    }

    private func append(_ entry: LogEntry, to state: inout State) {
        if state.log.count - state.first >= capacity {
            state.first += 1
            // Compact now and then instead of shifting the array on every event.
            if state.first >= capacity {
                state.log.removeFirst(state.first)
                state.first = 0
            }
        }
        state.log.append(entry)
    }

    package func run(sink: @escaping @Sendable (DeliveredEvent) -> Void) async throws {
        state.withLock { $0.sink = sink }
        defer { state.withLock { $0.sink = nil } }
        // Nothing to run: park until cancelled (graceful shutdown).
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(3600))
        }
    }

    package func readLog(from start: EventCursor) async throws -> LogRead {
        state.withLock { state in
            let live = state.log[state.first...]
            guard let position = Self.position(of: start, in: live) else {
                let after = live.drop { $0.cursor <= start }
                return LogRead(holdsStart: false, entries: Array(after))
            }
            return LogRead(holdsStart: true, entries: Array(live[(position + 1)...]))
        }
    }

    package func logHolds(_ cursors: [EventCursor]) async throws -> Set<EventCursor> {
        state.withLock { state in
            let live = state.log[state.first...]
            return Set(cursors.filter { Self.position(of: $0, in: live) != nil })
        }
    }

    package func logTip() async throws -> EventCursor {
        state.withLock { $0.log[$0.log.count - 1].cursor }
    }

    /// Binary search: the log is in cursor order.
    private static func position(of cursor: EventCursor, in log: ArraySlice<LogEntry>) -> Int? {
        var low = log.startIndex
        var high = log.endIndex
        while low < high {
            let middle = (low + high) / 2
            if log[middle].cursor < cursor { low = middle + 1 } else { high = middle }
        }
        return low < log.endIndex && log[low].cursor == cursor ? low : nil
    }
}
