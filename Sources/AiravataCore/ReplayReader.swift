import AiravataProtocol
package import NIOCore
import Synchronization

/// Reads the replay log for resuming clients, once for all of those that resume at the same
/// time: when a drained node's clients arrive together, the node reads the log from the
/// oldest of their cursors and answers every one of them from that single read.
package final class ReplayReader: Sendable {
    /// An event to replay, framed once for every client that gets it.
    package struct Replayed: Sendable {
        package var cursor: EventCursor
        package var routing: EventRouting
        package var frame: ByteBuffer
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

    package init(bus: any EventBus, frames: any FrameEncoding) {
        self.bus = bus
        self.frames = frames
    }

    /// Log reads made and replays answered, for metrics: with many clients resuming at once
    /// the first stays far below the second.
    package var counts: (reads: Int, replays: Int) {
        state.withLock { ($0.reads, $0.answered) }
    }

    package func replay(after cursor: EventCursor) async throws -> Outcome {
        try await withCheckedThrowingContinuation { continuation in
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
                if batch.isEmpty { state.reading = false } else { state.reads += 1 }
                return batch
            }
            guard let oldest = batch.map(\.cursor).min() else { return }
            let read: LogRead
            do {
                read = try await bus.readLog(from: oldest)
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
                continue
            }
            let end = read.entries.last?.cursor ?? oldest
            let replayed = read.entries.compactMap { entry -> Replayed? in
                guard let event = entry.event else { return nil }
                let frame = frames.frame(event.envelope(cursor: entry.cursor).encoded())
                return Replayed(cursor: entry.cursor, routing: event.routing, frame: frame)
            }
            for waiter in batch {
                waiter.continuation.resume(returning: Self.outcome(for: waiter.cursor, oldest, read, replayed, end))
            }
            state.withLock { $0.answered += batch.count }
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
