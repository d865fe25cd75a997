import AiravataProtocol
package import NIOCore
import Synchronization

/// Finds the events a resuming client missed.
///
/// First from memory: every node routes every event, so it keeps the newest ones it routed
/// (framed already) and answers a client whose cursor is among them without touching Redis.
/// That covers the usual resume, seconds after a drain or a crash. Otherwise from the replay
/// log, read once for all the clients waiting at the same time: from the oldest of their
/// cursors, answering every one of them from that single read.
package final class ReplayReader: Sendable {
    /// An event to replay, framed once for every client that gets it.
    package struct Replayed: Sendable {
        package var cursor: EventCursor
        package var routing: EventRouting
        package var frame: ByteBuffer

        package init(cursor: EventCursor, routing: EventRouting, frame: ByteBuffer) {
            self.cursor = cursor
            self.routing = routing
            self.frame = frame
        }
    }

    package enum Outcome: Sendable {
        /// Every event after the client's cursor, up to `end`, the end of the log when read.
        case recovered([Replayed], end: EventCursor)
        /// The log no longer holds the client's cursor: it fell out of the window, the log
        /// was lost with Redis, or the cursor was never a cursor of this log.
        case outOfWindow
    }

    private struct Waiter {
        var cursor: EventCursor
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct State {
        var waiters: [Waiter] = []
        var reading = false
        var reads = 0
        var answered = 0
    }

    private let bus: any EventBus
    private let frames: any FrameEncoding
    private let state = Mutex(State())
    /// The newest events routed here, gapless: the bus delivers every event in cursor order
    /// (filling its own gaps from the log).
    private let recent: Mutex<CursorRing<Replayed>>

    package init(bus: any EventBus, frames: any FrameEncoding, recentCapacity: Int = 10_000) {
        self.bus = bus
        self.frames = frames
        self.recent = Mutex(CursorRing(capacity: recentCapacity))
        bus.onLogReset { [weak self] in self?.forgetRecent() }
    }

    /// Called for each routed event, in cursor order.
    package func remember(_ event: Replayed) {
        recent.withLock { $0.append(event) }
    }

    /// The newest cursor routed here: where a new client's history starts.
    package var newestRemembered: EventCursor? {
        recent.withLock { $0.newest?.cursor }
    }

    /// After the log was lost, what this node saw before may not match the new log.
    package func forgetRecent() {
        recent.withLock { $0.removeAll() }
    }

    /// The events after `cursor` if memory holds `cursor` itself (so nothing between is
    /// missing), with the newest cursor held.
    private func fromMemory(after cursor: EventCursor) -> Outcome? {
        recent.withLock { recent in
            guard let position = recent.position(of: cursor), let end = recent.newest?.cursor else { return nil }
            return .recovered(Array(recent.entries[(position + 1)...]), end: end)
        }
    }

    /// Log reads made and replays answered, for metrics: with many clients resuming at once
    /// the first stays far below the second.
    package var counts: (reads: Int, replays: Int) {
        state.withLock { ($0.reads, $0.answered) }
    }

    package func replay(after cursor: EventCursor) async throws -> Outcome {
        if let answer = fromMemory(after: cursor) {
            state.withLock { $0.answered += 1 }
            return answer
        }
        return try await withCheckedThrowingContinuation { continuation in
            let startReading = state.withLock { state -> Bool in
                state.waiters.append(Waiter(cursor: cursor, continuation: continuation))
                guard !state.reading else { return false }
                state.reading = true
                return true
            }
            if startReading {
                Task { await self.readForWaiters() }
            }
        }
    }

    /// Serves waiters in rounds until none is left; whoever arrives during a read waits for
    /// the next round, whose read starts late enough to cover it.
    private func readForWaiters() async {
        while true {
            let batch = state.withLock { state -> [Waiter] in
                let batch = state.waiters
                state.waiters = []
                if batch.isEmpty { state.reading = false } else { state.answered += batch.count }
                return batch
            }
            guard !batch.isEmpty else { return }
            // Only cursors the log still holds may set where the read starts: a bogus or
            // ancient one must not make the node read (and frame) the whole log.
            let held: Set<EventCursor>
            do {
                held = try await bus.logHolds(Array(Set(batch.map(\.cursor))))
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
                continue
            }
            for waiter in batch where !held.contains(waiter.cursor) {
                waiter.continuation.resume(returning: .outOfWindow)
            }
            let readers = batch.filter { held.contains($0.cursor) }
            guard let oldest = readers.map({ $0.cursor }).min() else {
                continue
            }
            state.withLock { $0.reads += 1 }
            let read: LogRead
            do {
                read = try await bus.readLog(from: oldest)
            } catch {
                for waiter in readers { waiter.continuation.resume(throwing: error) }
                continue
            }
            let end = read.entries.last?.cursor ?? oldest
            let replayed = read.entries.compactMap { entry -> Replayed? in
                guard let event = entry.event else { return nil }
                let frame = frames.frame(event.envelope(cursor: entry.cursor).encoded())
                return Replayed(cursor: entry.cursor, routing: event.routing, frame: frame)
            }
            for waiter in readers {
                waiter.continuation.resume(returning: Self.outcome(for: waiter.cursor, oldest, read, replayed, end))
            }
        }
    }

    private static func outcome(
        for cursor: EventCursor,
        _ oldest: EventCursor,
        _ read: LogRead,
        _ replayed: [Replayed],
        _ end: EventCursor
    ) -> Outcome {
        let held = cursor == oldest ? read.holdsStart : read.entries.contains { $0.cursor == cursor }
        guard held else { return .outOfWindow }
        let start = replayed.firstIndex { $0.cursor > cursor } ?? replayed.endIndex
        return .recovered(Array(replayed[start...]), end: max(end, cursor))
    }
}
