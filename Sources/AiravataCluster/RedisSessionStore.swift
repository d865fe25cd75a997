package import AiravataCore
import AiravataProtocol
package import AiravataRedis
import NIOCore

/// Sessions as small JSON strings that expire in Redis, so a client can resume on any node.
package final class RedisSessionStore: SessionStore {
    private let client: RedisClient
    private let keys: RedisKeys
    private let ttlMillis: Int

    package init(client: RedisClient, keyPrefix: String, ttlSeconds: Double) {
        self.client = client
        self.keys = RedisKeys(prefix: keyPrefix)
        self.ttlMillis = max(1, Int(ttlSeconds * 1000))
    }

    package func save(_ id: String, _ record: SessionRecord) async throws {
        let reply = try await client.send(
            RedisCommand(
                "SET", RedisArgument(keys.session(id)), RedisArgument(record.json.jsonString), "PX",
                RedisArgument(ttlMillis))
        )
        if case .error(let message) = reply { throw RedisError(.server, message) }
    }

    package func load(_ id: String) async throws -> SessionRecord? {
        let reply = try await client.send(RedisCommand("GET", RedisArgument(keys.session(id))))
        switch reply {
        case .error(let message):
            throw RedisError(.server, message)
        case .bulk(let body):
            guard let json = try? JSONValue(parsing: Array(body.readableBytesView)) else { return nil }
            return SessionRecord(json: json)
        default:
            return nil
        }
    }

    /// One pipelined PEXPIRE per session, in batches; a session already gone stays gone.
    package func renew(_ ids: [String]) async throws {
        let batch = 1000
        var start = 0
        while start < ids.count {
            let slice = ids[start..<min(start + batch, ids.count)]
            _ = try await client.pipeline(
                slice.map { RedisCommand("PEXPIRE", RedisArgument(keys.session($0)), RedisArgument(ttlMillis)) })
            start += batch
        }
    }
}
