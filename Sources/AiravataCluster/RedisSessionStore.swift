package import AiravataCore
import AiravataProtocol
package import AiravataRedis
import NIOCore

/// Sessions as small JSON strings that expire in Redis, so a client can resume on any node.
/// Each user's sessions are indexed in a sorted set by expiry, which bounds how many a user
/// keeps: the save script evicts the oldest beyond the bound.
package final class RedisSessionStore: SessionStore {
    private let client: RedisClient
    private let keys: RedisKeys
    private let ttlMillis: Int

    package init(client: RedisClient, keyPrefix: String, ttlSeconds: Double) {
        self.client = client
        self.keys = RedisKeys(prefix: keyPrefix)
        self.ttlMillis = max(1, Int(ttlSeconds * 1000))
    }

    package func save(_ id: String, _ record: SessionRecord, sessionsPerUser: Int) async throws {
        let save = saveScriptInput(id, record, sessionsPerUser: sessionsPerUser)
        let reply = try await client.run(ClusterScripts.saveSession, keys: save.keys, arguments: save.arguments)
        if case .error(let message) = reply { throw RedisError(.server, message) }
    }

    /// The keys and arguments of `ClusterScripts.saveSession`, which the limiter's
    /// `admitAndSaveSession` takes after its own.
    func saveScriptInput(_ id: String, _ record: SessionRecord, sessionsPerUser: Int)
        -> (keys: [RedisArgument], arguments: [RedisArgument])
    {
        (
            [RedisArgument(keys.session(id)), RedisArgument(keys.userSessions(record.userID))],
            [
                RedisArgument(record.json.jsonString), RedisArgument(ttlMillis), RedisArgument(id),
                RedisArgument(max(sessionsPerUser, 1)), RedisArgument(keys.session("")),
                RedisArgument(Self.nowMillis()),
            ]
        )
    }

    /// Whether this store's sessions live where `client` writes.
    func isStored(through client: RedisClient) -> Bool {
        self.client === client
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

    /// One pipelined PEXPIRE per session and a fresh score in its user's index, in batches;
    /// a session already gone stays gone.
    package func renew(_ sessions: [SessionHandle]) async throws {
        let batch = 1000
        let expiry = Self.nowMillis() + ttlMillis
        var start = 0
        while start < sessions.count {
            let slice = sessions[start..<min(start + batch, sessions.count)]
            _ = try await client.pipeline(
                slice.flatMap { session in
                    [
                        RedisCommand("PEXPIRE", RedisArgument(keys.session(session.id)), RedisArgument(ttlMillis)),
                        RedisCommand(
                            "ZADD", RedisArgument(keys.userSessions(session.userID)), "XX", RedisArgument(expiry),
                            RedisArgument(session.id)),
                        RedisCommand(
                            "PEXPIRE", RedisArgument(keys.userSessions(session.userID)), RedisArgument(ttlMillis)),
                    ]
                })
            start += batch
        }
    }

    private static func nowMillis() -> Int {
        Int(WallClock.nowMicros() / 1000)
    }
}
