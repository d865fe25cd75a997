import AiravataProtocol
import NIOCore
import Synchronization

/// Finds the events a resuming client missed.
///
/// First from memory: every node routes every event, so it keeps the newest ones it routed
/// and answers a client whose cursor is among them without touching Redis.
/// That covers the usual resume, seconds after a drain or a crash. Otherwise from the replay
/// log, read once for all the clients waiting at the same time: from the oldest of their
/// cursors, answering every one of them from that single read. The log is read in chunks,
/// and the read stops once every waiting client is owed more than it may be replayed.
package final class ReplayReader: Sendable {
    /// Entries per log read (one `XRANGE … COUNT`): what a resume holds beyond the events it
    /// is owed, whatever the log's length.
    package static let logChunk = 1_000

    /// An event to replay; framed only when a client is owed it (most never are).
    package struct Replayed: Sendable {
        package var cursor: EventCursor
        package var event: RoutedEvent
        package var routing: EventRouting { event.routing }

        package init(cursor: EventCursor, event: RoutedEvent) {
            self.cursor = cursor
            self.event = event
        }
    }

    package enum Outcome: Sendable {
        /// Every event the client is owed after its cursor, up to `end`, the end of the log
        /// when read.
        case recovered([Replayed], end: EventCursor)
        /// The client is owed more than its limit; reading stopped there.
        case tooLarge
        /// The log no longer holds the client's cursor: it fell out of the window, the log
        /// was lost with Redis, or the cursor was never a cursor of this log.
        case outOfWindow
    }

    /// What one resuming client may be replayed: the events it is entitled to, at most `limit`.
    package struct Request: Sendable {
        package var cursor: EventCursor
        package var limit: Int
        package var owes: @Sendable (EventRouting) -> Bool

        package init(after cursor: EventCursor, limit: Int, owes: @escaping @Sendable (EventRouting) -> Bool) {
            self.cursor = cursor
            self.limit = limit
            self.owes = owes
        }
    }

    private struct Waiter {
        var request: Request
        var continuation: CheckedContinuation<Outcome, any Error>
        var owed: [Replayed] = []
        /// Whether the log was seen to hold the waiter's cursor.
        var seen = false
        var cursor: EventCursor { request.cursor }
    }

    private struct State {
        var waiters: [Waiter] = []
        var reading = false
        var reads = 0
        var answered = 0
        var entriesRead = 0
    }

    private let bus: any EventBus
    private let state = Mutex(State())
    /// The newest events routed here, gapless: the bus delivers every event in cursor order
    /// (filling its own gaps from the log).
    private let recent: Mutex<CursorRing<Replayed>>
    /// The log's tip as last read, and how many log resets came before the read.
    private let readTip = Mutex<(cursor: EventCursor?, resets: Int)>((nil, 0))

    package init(bus: any EventBus, recentCapacity: Int = 10_000) {
        self.bus = bus
        self.recent = Mutex(CursorRing(capacity: recentCapacity))
        bus.onLogReset { [weak self] _ in self?.forgetRecent() }
    }

    /// Called for each routed event, in cursor order.
    package func remember(_ event: Replayed) {
        recent.withLock { $0.append(event) }
    }

    /// The newest cursor routed here.
    package var newestRemembered: EventCursor? {
        recent.withLock { $0.newest?.cursor }
    }

    /// Where a new client's history starts: the newest cursor this node knows of, routed here
    /// or read from the log's tip, whichever is later. The log is read only while the node
    /// knows neither, so that a quiet cluster's connection storm (a rollout) makes one read,
    /// not one per client.
    ///
    /// A known cursor may trail the log's tip: events published since are on their way here.
    /// Call this after registering the client, so that each of them either is routed before
    /// (and known here, so at or below the start) or finds the client registered (and is
    /// delivered, being above the start). A read that a log reset overtook is not kept.
    package func startCursor(readingTip read: () async throws -> EventCursor) async throws -> EventCursor {
        let routed = newestRemembered
        let (known, resets) = readTip.withLock { ($0.cursor, $0.resets) }
        if let routed, let known { return max(routed, known) }
        if let newest = routed ?? known { return newest }
        let tip = try await read()
        readTip.withLock { state in
            guard state.resets == resets else { return }
            state.cursor = max(state.cursor ?? tip, tip)
        }
        return tip
    }

    /// After the log was lost, what this node saw before may not match the new log.
    package func forgetRecent() {
        // A tip read under way now is not kept (it counted the resets before it began).
        readTip.withLock { state in
            state.cursor = nil
            state.resets += 1
        }
        recent.withLock { $0.removeAll() }
    }

    /// The events after `cursor` if memory holds `cursor` itself (so nothing between is
    /// missing), with the newest cursor held.
    private func fromMemory(_ request: Request) -> Outcome? {
        recent.withLock { recent in
            guard let position = recent.position(of: request.cursor), let end = recent.newest?.cursor else {
                return nil
            }
            var owed: [Replayed] = []
            for replayed in recent.entries[(position + 1)...] where request.owes(replayed.routing) {
                guard owed.count < request.limit else { return .tooLarge }
                owed.append(replayed)
            }
            return .recovered(owed, end: end)
        }
    }

    /// Log reads made and replays answered, for metrics: with many clients resuming at once
    /// the first stays far below the second.
    package var counts: (reads: Int, replays: Int) {
        state.withLock { ($0.reads, $0.answered) }
    }

    /// Log entries read so far, all resumes together.
    package var entriesRead: Int {
        state.withLock { $0.entriesRead }
    }

    package func replay(_ request: Request) async throws -> Outcome {
        if let answer = fromMemory(request) {
            state.withLock { $0.answered += 1 }
            return answer
        }
        return try await withCheckedThrowingContinuation { continuation in
            let startReading = state.withLock { state -> Bool in
                state.waiters.append(Waiter(request: request, continuation: continuation))
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
            await read(for: readers, from: oldest)
        }
    }

    /// Reads the log after `oldest` in chunks, collecting each reader's owed events, and
    /// answers every reader; stops as soon as none is left waiting.
    private func read(for readers: [Waiter], from oldest: EventCursor) async {
        var open = readers
        var from = oldest
        var first = true
        while true {
            let read: LogRead
            do {
                read = try await bus.readLog(from: from, limit: Self.logChunk)
            } catch {
                for waiter in open { waiter.continuation.resume(throwing: error) }
                return
            }
            state.withLock { $0.entriesRead += read.entries.count }
            if first {
                first = false
                for index in open.indices where open[index].cursor == oldest { open[index].seen = read.holdsStart }
            }
            for entry in read.entries {
                for index in open.indices where open[index].cursor == entry.cursor { open[index].seen = true }
                guard let event = entry.event else { continue }
                var index = 0
                while index < open.count {
                    guard open[index].cursor < entry.cursor, open[index].request.owes(event.routing) else {
                        index += 1
                        continue
                    }
                    guard open[index].owed.count < open[index].request.limit else {
                        open.remove(at: index).continuation.resume(returning: .tooLarge)
                        continue
                    }
                    open[index].owed.append(Replayed(cursor: entry.cursor, event: event))
                    index += 1
                }
            }
            let end = read.entries.last?.cursor ?? from
            guard read.entries.count >= Self.logChunk, !open.isEmpty else {
                for waiter in open {
                    waiter.continuation.resume(
                        returning: waiter.seen ? .recovered(waiter.owed, end: max(end, waiter.cursor)) : .outOfWindow)
                }
                return
            }
            from = end
        }
    }
}
