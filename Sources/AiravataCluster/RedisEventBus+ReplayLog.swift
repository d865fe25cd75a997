package import AiravataCore
import AiravataRedis
import Logging
import NIOCore

/// Reads of the replay log: for resuming clients (in chunks), for checking that cursors are
/// still held, and for the log's newest cursor.
extension RedisEventBus {
    package func readLog(from start: EventCursor, limit: Int) async throws -> LogRead {
        let limit = max(limit, 1)
        // From `start` itself, to learn whether the log still holds it; and the floor, below
        // which the log may lack events although it holds the start.
        let replies = try await client.pipeline([
            RedisCommand(
                "XRANGE", RedisArgument(keys.eventStream), RedisArgument(start.description), "+", "COUNT",
                RedisArgument(limit + 1)),
            RedisCommand("GET", RedisArgument(keys.logFloor)),
        ])
        guard replies.count == 2 else {
            throw RedisError(.unexpectedReply, "log read answered \(replies.count) replies")
        }
        let reply = replies[0]
        if case .error(let message) = reply { throw RedisError(.server, message) }
        let belowFloor = try Self.floor(replies[1]).map { start < $0 } ?? false
        var holdsStart = false
        var entries: [LogEntry] = []
        for item in reply.array ?? [] {
            guard let (id, body) = Self.streamEntry(item) else { continue }
            if id == start {
                holdsStart = !belowFloor
                continue
            }
            guard entries.count < limit else { break }
            var event: RoutedEvent?
            if let body {
                event = EventWireFormat.decode(body)
                if event == nil {
                    logger.warning("undecodable event in the replay log", metadata: ["cursor": "\(id)"])
                }
            }
            entries.append(LogEntry(cursor: id, event: event))
        }
        return LogRead(holdsStart: holdsStart, entries: entries)
    }

    package func logHolds(_ cursors: [EventCursor]) async throws -> Set<EventCursor> {
        guard !cursors.isEmpty else { return [] }
        let replies = try await client.pipeline(
            [RedisCommand("GET", RedisArgument(keys.logFloor))]
                + cursors.map { cursor in
                    let id = RedisArgument(cursor.description)
                    return RedisCommand("XRANGE", RedisArgument(keys.eventStream), id, id, "COUNT", 1)
                })
        guard let floorReply = replies.first else { throw RedisError(.unexpectedReply, "no reply to the floor read") }
        let floor = try Self.floor(floorReply)
        var held = Set<EventCursor>()
        for (cursor, reply) in zip(cursors, replies.dropFirst()) where !(reply.array ?? []).isEmpty {
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
