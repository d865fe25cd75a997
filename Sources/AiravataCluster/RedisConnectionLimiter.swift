package import AiravataCore
package import AiravataRedis
package import Logging
import Synchronization

/// Cluster-wide connection limits. Each limit is a Redis hash of node instance → count,
/// checked and incremented by one Lua script, so concurrent connects on different nodes
/// cannot overshoot. Counts of a node whose lease has expired are ignored and removed,
/// so a node killed with SIGKILL stops counting within its lease time.
package final class RedisConnectionLimiter: ConnectionLimiter {
    private let client: RedisClient
    private let keys: RedisKeys
    private let instance: String
    private let limits: ConnectionLimits
    private let logger: Logger
    /// This node's own counts per hash key, to restore them after Redis lost them.
    private let tallies = Mutex<[String: Int]>([:])

    package init(client: RedisClient, keyPrefix: String, instance: String, limits: ConnectionLimits, logger: Logger) {
        self.client = client
        self.keys = RedisKeys(prefix: keyPrefix)
        self.instance = instance
        self.limits = limits
        self.logger = logger
    }

    private func hashes(for lease: ConnectionLease) -> [String] {
        [keys.userConnections(lease.userID), keys.ipConnections(lease.ip), keys.allConnections]
    }

    package func admit(_ lease: ConnectionLease) async throws -> Result<Void, ConnectionLimitExceeded> {
        let hashes = hashes(for: lease)
        let reply = try await client.send(
            RedisCommand(
                "EVAL",
                [RedisArgument(ClusterScripts.admit), 3] + hashes.map { RedisArgument($0) } + [
                    RedisArgument(instance), RedisArgument(keys.nodeLeasePrefix), RedisArgument(limits.perUser),
                    RedisArgument(limits.perIP), RedisArgument(limits.global),
                ]
            )
        )
        switch reply.string {
        case "ok":
            tallies.withLock { tallies in
                for hash in hashes { tallies[hash, default: 0] += 1 }
            }
            return .success(())
        case "user": return .failure(.perUser(limit: limits.perUser))
        case "ip": return .failure(.perIP(limit: limits.perIP))
        case "global": return .failure(.global(limit: limits.global))
        default: throw RedisError(.unexpectedReply, "admission script answered \(reply)")
        }
    }

    package func release(_ lease: ConnectionLease) async {
        let hashes = hashes(for: lease)
        tallies.withLock { tallies in
            for hash in hashes {
                tallies[hash, default: 1] -= 1
                if tallies[hash] == 0 { tallies[hash] = nil }
            }
        }
        do {
            try await client.send(
                RedisCommand(
                    "EVAL",
                    [RedisArgument(ClusterScripts.release), 3] + hashes.map { RedisArgument($0) } + [
                        RedisArgument(instance)
                    ]
                )
            )
        } catch {
            // The tally is already down; `restore()` writes the true counts once Redis is back.
            logger.debug("could not release a connection lease now", metadata: ["error": "\(error)"])
        }
    }

    /// Writes this node's true counts (after a reconnect: Redis may have restarted empty,
    /// or missed releases while it was away).
    package func restore(on connection: RedisConnection) async throws {
        let snapshot = tallies.withLock { $0 }
        guard !snapshot.isEmpty else { return }
        let commands = snapshot.map { hash, count in
            RedisCommand("HSET", RedisArgument(hash), RedisArgument(instance), RedisArgument(count))
        }
        _ = try await connection.pipeline(commands)
    }

    /// Removes this node's counts (graceful shutdown).
    package func withdraw() async {
        let hashes = tallies.withLock { $0.keys }
        _ = try? await client.pipeline(hashes.map { RedisCommand("HDEL", RedisArgument($0), RedisArgument(instance)) })
    }
}
