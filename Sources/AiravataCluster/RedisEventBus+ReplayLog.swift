package import AiravataCore
import AiravataRedis
import Logging
import NIOCore
import Synchronization

/// Reads of the replay log: for resuming clients (in chunks), for checking that cursors are
/// still held, and for the log's newest cursor.
extension RedisEventBus {
    /// Entries per `XRANGE` of a log read: one v3 block may hold a megabyte of events.
    static let logReadEntries = 128

    /// The newest entry at or below `cursor`: the one that holds it, if the log does.
    func entryCommand(holding cursor: EventCursor) -> RedisCommand {
        RedisCommand("XREVRANGE", RedisArgument(keys.eventStream), RedisArgument(cursor.description), "-", "COUNT", 1)
    }

    package func readLog(from start: EventCursor, limit: Int) async throws -> LogRead {
        let limit = max(limit, 1)
        // The entries after `start`, then the entry holding `start` (whether the log still
        // holds it, and the rest of its block), and the floor, below which the log may lack
        // events although it holds the start.
        var (holding, page, more, floor) = try await readAfter(start, withFloor: true)
        let belowFloor = try floor.flatMap(Self.floor).map { start < $0 } ?? false
        let holdsStart = holding != nil && !belowFloor
        var entries: [LogEntry] = []
        if let holding { page.insert(holding, at: 0) }
        while true {
            for entry in page {
                append(entry, after: start, to: &entries, limit: limit)
                if entries.count >= limit { break }
            }
            guard entries.count < limit, more, let newest = page.last else { break }
            (holding, page, more, _) = try await readAfter(newest.last, withFloor: false)
            // Trimmed past this read while it went on: what follows may not be all there.
            guard holding != nil else {
                throw EventBusUnavailableError("the replay log was trimmed past \(newest.last) while it was read")
            }
        }
        return LogRead(holdsStart: holdsStart, entries: entries)
    }

    /// One page of the log after `cursor` and, read after it, the entry holding `cursor` (nil
    /// when the log no longer holds it). The log is trimmed from its oldest end, so an entry
    /// still there after the page was read means nothing after it was trimmed before: the
    /// page is whole. `more`: the page is full (the log may go on). `floor`: the floor's
    /// reply, when asked for.
    func readAfter(_ cursor: EventCursor, withFloor: Bool) async throws -> (
        holding: ReplayLogEntry?, page: [ReplayLogEntry], more: Bool, floor: RedisReply?
    ) {
        var commands = [
            RedisCommand(
                "XRANGE", RedisArgument(keys.eventStream), RedisArgument("(\(cursor)"), "+", "COUNT",
                RedisArgument(Self.logReadEntries)),
            entryCommand(holding: cursor),
        ]
        if withFloor { commands.append(RedisCommand("GET", RedisArgument(keys.logFloor))) }
        let replies = try await client.pipeline(commands)
        guard replies.count == commands.count else {
            throw RedisError(.unexpectedReply, "log read answered \(replies.count) replies")
        }
        for reply in replies.prefix(2) {
            if case .error(let message) = reply { throw RedisError(.server, message) }
        }
        let holding = replies[1].array?.first.flatMap(ReplayLogEntry.init).flatMap { $0.covers(cursor) ? $0 : nil }
        let items = replies[0].array ?? []
        return (
            holding, items.compactMap(ReplayLogEntry.init), items.count == Self.logReadEntries,
            withFloor ? replies[2] : nil
        )
    }

    /// An entry's events after `start`, decoded, up to `limit` in all; a mark or an unreadable
    /// block as a cursor without an event.
    private func append(_ entry: ReplayLogEntry, after start: EventCursor, to entries: inout [LogEntry], limit: Int) {
        if entry.isMark || entry.isMalformed {
            if entry.isMalformed {
                logger.warning("unreadable block in the replay log", metadata: ["cursor": "\(entry.first)"])
            }
            if entry.last > start, entries.count < limit { entries.append(LogEntry(cursor: entry.last, event: nil)) }
            return
        }
        for (cursor, body) in entry.events where cursor > start {
            guard entries.count < limit else { return }
            let event = EventWireFormat.decode(body)
            if event == nil {
                logger.warning("undecodable event in the replay log", metadata: ["cursor": "\(cursor)"])
            }
            entries.append(LogEntry(cursor: cursor, event: event))
        }
    }

    /// Most entries one round of `logHolds` fetches. Each answer is a whole entry (a v3
    /// block may be a megabyte), so a batch of resumes with many cursors, maybe crafted to
    /// fall inside one large block, costs this many entries at a time rather than one per
    /// cursor.
    static let holdsProbesPerRound = 16

    /// Which cursors the log still holds completely: an entry covers each, and it is not
    /// below the floor. Rounds of up to `holdsProbesPerRound` entry reads, one per
    /// millisecond (the cursors of a block share its millisecond); a cursor that an entry
    /// read in an earlier round covers needs no read of its own. Entries never overlap, so
    /// an entry that covers a cursor is the one holding it.
    package func logHolds(_ cursors: [EventCursor]) async throws -> Set<EventCursor> {
        guard !cursors.isEmpty else { return [] }
        var unresolved = Array(Set(cursors)).sorted()
        var held = Set<EventCursor>()
        var floor: EventCursor?
        var floorRead = false
        while !unresolved.isEmpty {
            var probes: [EventCursor] = []
            for cursor in unresolved where probes.last?.milliseconds != cursor.milliseconds {
                probes.append(cursor)
                if probes.count == Self.holdsProbesPerRound { break }
            }
            var commands = probes.map { entryCommand(holding: $0) }
            if !floorRead { commands.insert(RedisCommand("GET", RedisArgument(keys.logFloor)), at: 0) }
            let replies = try await client.pipeline(commands)
            guard replies.count == commands.count else {
                throw RedisError(.unexpectedReply, "log read answered \(replies.count) replies")
            }
            if !floorRead {
                floor = try Self.floor(replies[0])
                floorRead = true
            }
            var covering: [(first: EventCursor, last: EventCursor)] = []
            for reply in replies.suffix(probes.count) {
                if case .error(let message) = reply { throw RedisError(.server, message) }
                if let entry = reply.array?.first.flatMap(ReplayLogEntry.init) {
                    covering.append((entry.first, entry.last))
                }
            }
            let probed = Set(probes)
            unresolved.removeAll { cursor in
                if covering.contains(where: { $0.first <= cursor && cursor <= $0.last }) {
                    // Held, but with events after it lost in a rewind: not a complete resume point.
                    if floor.map({ cursor >= $0 }) ?? true { held.insert(cursor) }
                    return true
                }
                // Read for itself and not covered: the log does not hold it.
                return probed.contains(cursor)
            }
        }
        return held
    }

    /// The log floor (`RedisKeys.logFloor`): nil when no rewind was ever seen. A value that
    /// is not a cursor is an error, not "no floor": reading past it could resume a client
    /// silently over lost events.
    static func floor(_ reply: RedisReply) throws -> EventCursor? {
        switch reply {
        case .null: return nil
        case .error(let message): throw RedisError(.server, message)
        default:
            guard let text = reply.string, let cursor = EventCursor(text) else {
                throw RedisError(.unexpectedReply, "the replay log floor is not a cursor: \(reply)")
            }
            return cursor
        }
    }

    /// The newest entry's last cursor; a missing log first gets its epoch mark.
    package func logTip() async throws -> EventCursor {
        try await tipEntry().last
    }

    /// Takes the log's newest entry as the node's position, unless it has one already.
    func startFromTip() async throws {
        let tip = try await tipEntry()
        state.withLock { state in
            if state.lastCursor == nil { state.move(to: tip.last, entry: tip.first, body: tip.lastBody) }
        }
    }

    /// The newest entry's id, last cursor and that cursor's body (nil for a mark); a missing
    /// or empty log first gets its epoch mark.
    func tipEntry() async throws -> (first: EventCursor, last: EventCursor, lastBody: ByteBuffer?) {
        for _ in 0..<2 {
            let newest = try await client.send(
                RedisCommand("XREVRANGE", RedisArgument(keys.eventStream), "+", "-", "COUNT", 1))
            if case .error(let message) = newest { throw RedisError(.server, message) }
            if let entry = newest.array?.first.flatMap(ReplayLogEntry.init) {
                return (entry.first, entry.last, entry.events.last?.1)
            }
            let mark = try await client.run(
                ClusterScripts.markEpoch, keys: [RedisArgument(keys.eventStream)], arguments: [])
            if let text = mark.string, let cursor = EventCursor(text) { return (cursor, cursor, nil) }
            if case .error(let message) = mark { throw RedisError(.server, message) }
            // Another node created the log between the two calls: read its newest entry.
        }
        throw EventBusUnavailableError("the replay log has no readable newest entry")
    }

    /// Events up to `cursor` may be missing from the log: every node's resumes from below it
    /// fail from now on. Written before this node forgets its own memory of them, and retried
    /// with the fill if Redis refuses it, so no resume can slip through in between.
    func raiseLogFloor(to cursor: EventCursor) async throws {
        let floor = try await client.run(
            ClusterScripts.raiseLogFloor, keys: [RedisArgument(keys.logFloor)],
            arguments: [RedisArgument(cursor.description)])
        if case .error(let message) = floor { throw RedisError(.server, message) }
        logger.notice("replay log floor raised", metadata: ["floor": "\(floor.string ?? "?")"])
    }

    /// Records that the log lost the event at `cursor`, which this node delivered
    /// (`RedisKeys.logLosses`): nodes that never delivered it tell their clients. A refusal
    /// (an ACL, a key of another type) is logged, not retried: the fill must go on.
    func recordLost(_ cursor: EventCursor) async throws {
        let reply = try await client.send(
            RedisCommand(
                "XADD", RedisArgument(keys.logLosses), "MAXLEN", RedisArgument(Self.lossRecords), "*", "cursor",
                RedisArgument(cursor.description)))
        if case .error(let message) = reply {
            logger.error(
                "cannot record the lost event for the other nodes; their clients that missed it are not told",
                metadata: ["key": "\(keys.logLosses)", "cursor": "\(cursor)", "error": "\(message)"])
        }
    }

    /// Most loss records kept: a few per failover.
    static let lossRecords = 16

    /// Reads the loss records this node has not judged and tells its clients about each event
    /// it never delivered (`State.judgeReportedLoss`). A refusal or an unreadable record is
    /// logged (at most once a minute) and skipped; only a connection failure throws.
    func judgeReportedLoss() async throws {
        let after = state.withLock { $0.lastLossRecord }
        let reply = try await client.send(
            RedisCommand(
                "XRANGE", RedisArgument(keys.logLosses), RedisArgument(after.map { "(\($0)" } ?? "-"), "+", "COUNT",
                RedisArgument(Self.lossRecords)))
        if case .error(let message) = reply {
            if let suppressed = lossRecordWarnings.permit() {
                logger.warning(
                    "cannot read the replay log's loss records; clients here are not told of events other nodes found lost",
                    metadata: ["key": "\(keys.logLosses)", "error": "\(message)", "suppressed": "\(suppressed)"])
            }
            return
        }
        for record in reply.array ?? [] {
            guard let parts = record.array, parts.count == 2, let id = parts[0].string else { continue }
            let fields = parts[1].array ?? []
            let lost =
                fields.count == 2 && fields[0].string == "cursor" ? fields[1].string.flatMap { EventCursor($0) } : nil
            let nowMillis = UInt64(max(WallClock.nowMicros() / 1000, 0))
            let (told, unknown, position) = state.withLock { state in
                state.lastLossRecord = id
                guard let lost else { return (false, false, state.lastCursor) }
                return (
                    state.judgeReportedLoss(lost, nowMillis: nowMillis), state.olderThanMemory(lost), state.lastCursor
                )
            }
            let metadata: Logger.Metadata = [
                "lost.cursor": "\(lost.map { "\($0)" } ?? "unreadable")", "record": "\(id)",
                "position": "\(position.map { "\($0)" } ?? "none")",
            ]
            if lost == nil, let suppressed = lossRecordWarnings.permit() {
                logger.warning(
                    "unreadable loss record in the replay log's loss records; skipped",
                    metadata: metadata.merging(["suppressed": "\(suppressed)"]) { $1 })
            } else if told {
                logger.warning(
                    "another node found the replay log rewound past an event this node never delivered; connected clients are told to refetch",
                    metadata: metadata)
            } else if unknown {
                logger.warning(
                    "another node found the replay log rewound past an event older than this node remembers; assumed delivered, clients not told",
                    metadata: metadata)
            }
        }
    }

    /// At start: losses recorded before this node ran concern no client of its.
    func adoptRecordedLosses() async {
        guard
            let reply = try? await client.send(
                RedisCommand("XREVRANGE", RedisArgument(keys.logLosses), "+", "-", "COUNT", "1")),
            let id = reply.array?.first?.array?.first?.string
        else { return }
        state.withLock { $0.lastLossRecord = id }
    }
}
