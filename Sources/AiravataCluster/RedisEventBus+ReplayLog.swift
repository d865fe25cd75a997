package import AiravataCore
import AiravataRedis
import Logging
import NIOCore

/// Reads of the replay log: for resuming clients (in chunks), for checking that cursors are
/// still held, and for the log's newest cursor.
extension RedisEventBus {
    /// Entries per `XRANGE` of a log read: one v3 block may hold a megabyte of events.
    static let logReadEntries = 128

    package func readLog(from start: EventCursor, limit: Int) async throws -> LogRead {
        let limit = max(limit, 1)
        var holdsStart = false
        var entries: [LogEntry] = []
        var from = start.description
        var first = true
        var belowFloor = false
        while entries.count < limit {
            // From `start` itself, to learn whether the log still holds it (the entry holding
            // it comes first); and the floor, below which the log may lack events although it
            // holds the start.
            var commands = [
                RedisCommand(
                    "XRANGE", RedisArgument(keys.eventStream), RedisArgument(from), "+", "COUNT",
                    RedisArgument(Self.logReadEntries))
            ]
            if first { commands.append(RedisCommand("GET", RedisArgument(keys.logFloor))) }
            let replies = try await client.pipeline(commands)
            guard replies.count == commands.count else {
                throw RedisError(.unexpectedReply, "log read answered \(replies.count) replies")
            }
            if case .error(let message) = replies[0] { throw RedisError(.server, message) }
            if first { belowFloor = try Self.floor(replies[1]).map { start < $0 } ?? false }
            let items = replies[0].array ?? []
            for (index, item) in items.enumerated() {
                guard let entry = ReplayLogEntry(item) else { continue }
                if first, index == 0, entry.covers(start) {
                    holdsStart = !belowFloor
                }
                if entry.isMark {
                    if entry.id > start, entries.count < limit {
                        entries.append(LogEntry(cursor: entry.id, event: nil))
                    }
                } else if entry.isMalformed {
                    logger.warning("unreadable block in the replay log", metadata: ["cursor": "\(entry.id)"])
                    if entry.id > start, entries.count < limit {
                        entries.append(LogEntry(cursor: entry.id, event: nil))
                    }
                }
                for (cursor, body) in entry.events where cursor > start {
                    guard entries.count < limit else { break }
                    let event = EventWireFormat.decode(body)
                    if event == nil {
                        logger.warning("undecodable event in the replay log", metadata: ["cursor": "\(cursor)"])
                    }
                    entries.append(LogEntry(cursor: cursor, event: event))
                }
            }
            first = false
            guard items.count == Self.logReadEntries, let last = items.last.flatMap(ReplayLogEntry.init) else { break }
            from = "(\(last.id)"
        }
        return LogRead(holdsStart: holdsStart, entries: entries)
    }

    package func logHolds(_ cursors: [EventCursor]) async throws -> Set<EventCursor> {
        guard !cursors.isEmpty else { return [] }
        // The first entry at or after a cursor holds it, if any does (a block's id is its
        // last cursor).
        let replies = try await client.pipeline(
            [RedisCommand("GET", RedisArgument(keys.logFloor))]
                + cursors.map { cursor in
                    RedisCommand(
                        "XRANGE", RedisArgument(keys.eventStream), RedisArgument(cursor.description), "+", "COUNT", 1)
                })
        guard let floorReply = replies.first else { throw RedisError(.unexpectedReply, "no reply to the floor read") }
        let floor = try Self.floor(floorReply)
        var held = Set<EventCursor>()
        for (cursor, reply) in zip(cursors, replies.dropFirst()) {
            guard let entry = reply.array?.first.flatMap(ReplayLogEntry.init), entry.covers(cursor) else { continue }
            // Held, but with events after it lost in a rewind: not a complete resume point.
            if let floor, cursor < floor { continue }
            held.insert(cursor)
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

    package func logTip() async throws -> EventCursor {
        let reply = try await client.run(ClusterScripts.tip, keys: [RedisArgument(keys.eventStream)], arguments: [])
        guard let text = reply.string, let cursor = EventCursor(text) else {
            throw EventBusUnavailableError("unexpected reply to the log tip script: \(reply)")
        }
        return cursor
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
}
