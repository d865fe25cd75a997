import AiravataCore
import AiravataRedis
import Logging
import NIOCore
import Synchronization

/// The gap fill: after the subscriber connection comes back (or a live cursor needs checking),
/// the node reads the replay log after the last cursor it delivered, delivers that, then
/// releases the live messages it held meanwhile (docs/architecture.md, "Gap fill").
extension RedisEventBus {
    func fillLoop() async {
        for await _ in fillStream {
            var attempts = 0
            while !Task.isCancelled {
                do {
                    if try await fillGap() { fillRequests.yield() }
                    break
                } catch {
                    attempts += 1
                    logger.warning(
                        "replay after reconnect failed; retrying",
                        metadata: ["error": "\(error)", "attempt": "\(attempts)"])
                    try? await Task.sleep(for: .milliseconds(min(2000, 50 * (1 << min(attempts, 6)))))
                }
            }
        }
    }

    /// Reads the stream after the last delivered cursor, delivers it, then releases the live
    /// messages that arrived meanwhile. Returns whether another fill must follow (the held
    /// messages overflowed, or one of them needs its cursor checked).
    private func fillGap() async throws -> Bool {
        var replayed = 0
        var resetDetected = false
        var resetAnnounced = false
        var requestsAtLastRead = 0
        var firstPage = true
        let startedAt = state.withLock { state in
            // Held from here: a fill that runs for a buffered request must not let live
            // events from a new log past before it has looked at that log.
            state.filling = true
            return state.lastCursor
        }
        if startedAt == nil {
            // Start-up could not read the tip: a cursor to check held messages against.
            try await startFromTip()
        }
        while true {
            guard
                let (after, entryOfAfter, bodyOfAfter) = state.withLock({ state in
                    state.lastCursor.map { ($0, state.lastEntry, state.lastBody) }
                })
            else { break }
            requestsAtLastRead = state.withLock { state in
                state.heldBeforeLastRead = state.held.count
                return state.fillRequestCount
            }
            // The entries after the last delivered cursor, then the entry holding it (the
            // cursor itself, or the block it is in). If the log no longer holds it (trimmed
            // during a long outage, or lost with Redis), events may be missing; so they may
            // if another entry holds it now, or the same id with another event at the cursor
            // (rewound by a failover, then written over by a block from a clock not past the
            // old one's): its events up to the cursor were never delivered here, and pub/sub
            // will not bring them.
            let (holding, page, more, _) = try await readAfter(after, withFloor: false)
            var entries = page
            if let holding {
                entries.insert(holding, at: 0)
                if let entryOfAfter, holding.first != entryOfAfter {
                    resetDetected = true
                } else if let bodyOfAfter, let body = holding.events.first(where: { $0.0 == after })?.1,
                    body != bodyOfAfter
                {
                    resetDetected = true
                }
            } else {
                resetDetected = true
            }
            // An epoch mark past the position: the log started again while we were away.
            if entries.contains(where: { $0.isMark && $0.last > after }) { resetDetected = true }
            if firstPage, !resetDetected {
                // Another node may have found the log rewound past an event this node never
                // got (its connection to the old primary dropped first): told before anything
                // from the new log is delivered.
                try await judgeReportedLoss()
            }
            firstPage = false
            if resetDetected, !resetAnnounced {
                // Before anything from the new log is delivered. The floor first: from now on
                // no node answers a resume from below it. Then the lost cursor, for the other
                // nodes: one whose connection to the old primary dropped before that event
                // reached it finds its own position intact, yet its clients missed it. A
                // failure throws before anything moved, so the retry finds the rewind again.
                // Then this node's clients are told, at the position where the log lost it.
                try await raiseLogFloor(to: after)
                try await recordLost(after)
                resetAnnounced = true
                let nowMillis = UInt64(max(WallClock.nowMicros() / 1000, 0))
                let told = state.withLock { $0.announceLostEvents(after, nowMillis: nowMillis) }
                logger.warning(
                    told
                        ? "the replay log no longer holds this node's last event (trimmed during a long outage, rewound by a failover to a replica that lagged, or lost with Redis); connected clients are told to refetch, and so are resuming clients older than it"
                        : "the replay log no longer holds this node's last event (trimmed during a long outage, rewound by a failover to a replica that lagged, or lost with Redis); resuming clients older than it are told to refetch (connected ones were told already)",
                    metadata: ["last.cursor": "\(after)"])
            }
            state.withLock { state in
                for entry in entries {
                    let newer = state.lastCursor.map { entry.last > $0 } ?? true
                    if entry.isMark {
                        // An epoch mark (announced above as a reset): past it.
                        if newer { state.move(to: entry.last, entry: entry.first, body: nil) }
                    } else if entry.isMalformed {
                        // Its events cannot be read from anywhere: past it, counted.
                        if newer {
                            state.move(to: entry.last, entry: entry.first, body: nil)
                            state.rejectedMessages += 1
                            logger.warning(
                                "unreadable block in the replay log; skipped", metadata: ["cursor": "\(entry.first)"])
                        }
                    } else {
                        for (cursor, body) in entry.events where state.lastCursor.map({ cursor > $0 }) ?? true {
                            deliver(
                                HeldMessage(cursor: cursor, entry: entry.first, body: body), fromLog: true,
                                state: &state)
                            replayed += 1
                        }
                    }
                }
            }
            if !more { break }
        }
        if let afterFillRead = state.withLock({ $0.afterFillRead }) { await afterFillRead() }
        let nowMillis = UInt64(max(WallClock.nowMicros() / 1000, 0))
        let (released, again) = state.withLock { state -> (Int, Bool) in
            if state.countNextFill { state.gapFills += 1 }
            state.countNextFill = false
            state.replayed += replayed
            if state.heldOverflowed {
                state.heldOverflowed = false
                state.heldBeforeLastRead = 0
                return (0, true)
            }
            guard state.fillRequestCount == requestsAtLastRead else {
                // A resubscription after the last read: events published before it may be in
                // neither that read nor pub/sub, and a held message released now would move the
                // position past them. Read again; what is held now was sent before that read.
                return (0, true)
            }
            // A real event held before the last read was in that read and is delivered already;
            // one above the node's position now was never in the log: forged or corrupt.
            for message in state.held.prefix(state.heldBeforeLastRead) {
                if let last = state.lastCursor, message.cursor > last { state.rejectedMessages += 1 }
            }
            var released = 0
            var position = state.heldBeforeLastRead
            while position < state.held.count {
                let message = state.held[position]
                guard Self.isPlausible(message.cursor, after: state.lastCursor, nowMillis: nowMillis) else { break }
                deliver(message, state: &state)
                released += 1
                position += 1
            }
            state.heldBytes -= state.held.prefix(position).reduce(0) { $0 + $1.body.readableBytes }
            state.held.removeFirst(position)
            state.heldBeforeLastRead = 0
            guard state.held.isEmpty else { return (released, true) }
            state.filling = false
            return (released, false)
        }
        logger.info(
            "filled the pub/sub gap from the replay log", metadata: ["replayed": "\(replayed)", "held": "\(released)"])
        return again
    }
}
