package import AiravataCore
import AiravataRedis
import Logging
import NIOCore

/// Reads of the replay log: for resuming clients (in chunks), for checking that cursors are
/// still held, and for the log's newest cursor.
extension RedisEventBus {
    package func readLog(from start: EventCursor, limit: Int) async throws -> LogRead {
        let limit = max(limit, 1)
        // From `start` itself, to learn whether the log still holds it.
        let reply = try await client.send(
            RedisCommand(
                "XRANGE", RedisArgument(keys.eventStream), RedisArgument(start.description), "+", "COUNT",
                RedisArgument(limit + 1))
        )
        if case .error(let message) = reply { throw RedisError(.server, message) }
        var holdsStart = false
        var entries: [LogEntry] = []
        for item in reply.array ?? [] {
            guard let (id, body) = Self.streamEntry(item) else { continue }
            if id == start {
                holdsStart = true
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
            cursors.map { cursor in
                let id = RedisArgument(cursor.description)
                return RedisCommand("XRANGE", RedisArgument(keys.eventStream), id, id, "COUNT", 1)
            })
        var held = Set<EventCursor>()
        for (cursor, reply) in zip(cursors, replies) where !(reply.array ?? []).isEmpty {
            held.insert(cursor)
        }
        return held
    }

    package func logTip() async throws -> EventCursor {
        let reply = try await client.run(ClusterScripts.tip, keys: [RedisArgument(keys.eventStream)], arguments: [])
        guard let text = reply.string, let cursor = EventCursor(text) else {
            throw EventBusUnavailableError("unexpected reply to the log tip script: \(reply)")
        }
        return cursor
    }
}
