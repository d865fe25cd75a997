package import AiravataCore
import AiravataProtocol
package import AiravataRedis
package import Logging
import Synchronization

/// Cluster-wide connection limits. Each limit is a Redis hash of node instance → count,
/// checked and incremented by one Lua script, so concurrent connects on different nodes
/// cannot overshoot. Counts of a node whose lease has expired are ignored and removed,
/// so a node killed with SIGKILL stops counting within its lease time.
///
/// This node's own tallies are the truth about its share. A release that cannot reach Redis
/// is kept as owed and given back later (before the next admission, on the lease renewal, or
/// by the absolute rewrite after a reconnect), so an outage never leaves a stale count that
/// locks a user out.
package final class RedisConnectionLimiter: ConnectionLimiter {
    private struct Ledger {
        /// This node's open connections per hash key.
        var tallies: [ExactString: Int] = [:]
        /// Releases that may not have reached Redis, per hash key.
        var owed: [ExactString: Int] = [:]
        /// Bumped by every absolute rewrite (`restore`), which settles everything owed.
        var generation = 0
        /// The keys the latest rewrite set absolutely.
        var rewritten: Set<ExactString> = []
    }

    private let client: RedisClient
    private let keys: RedisKeys
    private let instance: String
    private let limits: ConnectionLimits
    private let logger: Logger
    private let ledger = Mutex(Ledger())

    package init(client: RedisClient, keyPrefix: String, instance: String, limits: ConnectionLimits, logger: Logger) {
        self.client = client
        self.keys = RedisKeys(prefix: keyPrefix)
        self.instance = instance
        self.limits = limits
        self.logger = logger
    }

    /// Redis key names hold user ids, so the ledger keys them by their bytes: two spellings
    /// of one name in Unicode are two keys in Redis, and must be two here.
    private func hashes(for lease: ConnectionLease) -> [ExactString] {
        [keys.userConnections(lease.userID), keys.ipConnections(lease.ip), keys.allConnections].map { ExactString($0) }
    }

    package func admit(_ lease: ConnectionLease) async throws -> Result<Void, ConnectionLimitExceeded> {
        switch try await admit(lease, script: ClusterScripts.admit, saving: nil) {
        case .admitted: .success(())
        case .refused(let exceeded): .failure(exceeded)
        }
    }

    /// The admission and the session's save in one script, when the session store writes
    /// through this limiter's Redis client.
    package func admit(_ lease: ConnectionLease, opening session: OpeningSession) async throws
        -> AdmissionWithSession?
    {
        guard let store = session.store as? RedisSessionStore, store.isStored(through: client) else { return nil }
        let save = store.saveScriptInput(session.id, session.record, sessionsPerUser: session.sessionsPerUser)
        return try await admit(lease, script: ClusterScripts.admitAndSaveSession, saving: save)
    }

    private func admit(
        _ lease: ConnectionLease, script: RedisScript, saving save: (keys: [RedisArgument], arguments: [RedisArgument])?
    ) async throws -> AdmissionWithSession {
        // Owed releases first, on the same connection, so they count before this check.
        await settleOwed()
        let hashes = hashes(for: lease)
        let reply = try await client.run(
            script, keys: hashes.map { RedisArgument($0.value) } + (save?.keys ?? []),
            arguments: [
                RedisArgument(instance), RedisArgument(keys.nodeLeasePrefix), RedisArgument(limits.perUser),
                RedisArgument(limits.perIP), RedisArgument(limits.effectiveGlobal),
            ] + (save?.arguments ?? []))
        var saveFailure: String?
        switch reply.string {
        case "ok": break
        case "user": return .refused(.perUser(limit: limits.perUser))
        case "ip": return .refused(.perIP(limit: limits.perIP))
        case "global": return .refused(.global(limit: limits.global))
        case let answer? where save != nil && answer.hasPrefix(Self.unsaved):
            saveFailure = Self.saveFailure(in: answer)
        default: throw RedisError(.unexpectedReply, "admission script answered \(reply)")
        }
        ledger.withLock { ledger in
            for hash in hashes { ledger.tallies[hash, default: 0] += 1 }
        }
        return .admitted(saveFailure: saveFailure)
    }

    /// How `admitAndSaveSession` begins its answer when it counted the connection but could
    /// not save its session; Redis's error follows.
    private static let unsaved = "ok-unsaved "

    /// The most of Redis's error that a failed save's warning carries.
    package static let maxSaveFailureLength = 200

    /// The error after `ok-unsaved ` in an answer of `admitAndSaveSession`, cut for the log
    /// (Redis's errors are one line; whoever can write Redis could answer anything); nil
    /// for any other answer.
    package static func saveFailure(in answer: String) -> String? {
        guard answer.hasPrefix(unsaved) else { return nil }
        return String(answer.dropFirst(unsaved.count).prefix(maxSaveFailureLength))
    }

    package func release(_ lease: ConnectionLease) async {
        let hashes = hashes(for: lease)
        ledger.withLock { ledger in
            for hash in hashes {
                ledger.tallies[hash, default: 1] -= 1
                if ledger.tallies[hash] == 0 { ledger.tallies[hash] = nil }
            }
        }
        do {
            try await client.run(
                ClusterScripts.release, keys: hashes.map { RedisArgument($0.value) },
                arguments: [RedisArgument(instance), 1])
        } catch {
            ledger.withLock { ledger in
                for hash in hashes { ledger.owed[hash, default: 0] += 1 }
            }
            logger.debug(
                "could not release a connection lease now; owed until Redis answers", metadata: ["error": "\(error)"])
        }
    }

    /// Gives back the releases that failed earlier. Called before each admission and on
    /// each lease renewal; cheap when nothing is owed.
    package func settleOwed() async {
        let (owed, generation) = ledger.withLock { ledger in
            defer { ledger.owed = [:] }
            return (ledger.owed, ledger.generation)
        }
        guard !owed.isEmpty else { return }
        let entries = Array(owed)
        var unsettled: [(ExactString, Int)]
        do {
            let replies = try await client.pipeline(
                entries.map { hash, count in
                    // By body: rare, and a pipeline cannot retry one NOSCRIPT on its own.
                    ClusterScripts.release.eval(
                        keys: [RedisArgument(hash.value)], arguments: [RedisArgument(instance), RedisArgument(count)])
                })
            // An error reply (a script refused) gave nothing back.
            unsettled = zip(entries, replies).compactMap { entry, reply in
                if case .error = reply { entry } else { nil }
            }
            if unsettled.count < entries.count {
                logger.info(
                    "gave back connection leases owed since an outage",
                    metadata: ["keys": "\(entries.count - unsettled.count)"])
            }
        } catch {
            unsettled = entries
        }
        guard !unsettled.isEmpty else { return }
        ledger.withLock { ledger in
            for (hash, count) in unsettled {
                // A rewrite since then set this key absolutely, which already settled it.
                if ledger.generation != generation, ledger.rewritten.contains(hash) { continue }
                ledger.owed[hash, default: 0] += count
            }
        }
    }

    /// Writes this node's true counts, before any other command uses the new connection
    /// (after a reconnect: Redis may have restarted empty, or missed releases while it was
    /// away). Keys this node no longer counts in but may still owe are cleared.
    package func restore(on connection: RedisConnection) async throws {
        let (tallies, owed) = ledger.withLock { ledger in
            ledger.generation += 1
            ledger.rewritten = Set(ledger.tallies.keys).union(ledger.owed.keys)
            defer { ledger.owed = [:] }
            return (ledger.tallies, ledger.owed)
        }
        var commands = tallies.map { hash, count in
            (hash, RedisCommand("HSET", RedisArgument(hash.value), RedisArgument(instance), RedisArgument(count)))
        }
        for hash in owed.keys where tallies[hash] == nil {
            commands.append((hash, RedisCommand("HDEL", RedisArgument(hash.value), RedisArgument(instance))))
        }
        guard !commands.isEmpty else { return }
        let failed: Set<ExactString>
        let failure: any Error
        do {
            let replies = try await connection.pipeline(commands.map(\.1))
            // A refused write (a replica's READONLY, OOM, an ACL) comes back as a reply, not a throw.
            let refused = zip(commands, replies).compactMap { command, reply -> (ExactString, String)? in
                if case .error(let message) = reply { (command.0, message) } else { nil }
            }
            guard let first = refused.first else { return }
            failed = Set(refused.map(\.0))
            failure = RedisError(
                .server, "could not rewrite \(refused.count) connection counts after a reconnect: \(first.1)")
        } catch {
            failed = Set(commands.map(\.0))
            failure = error
        }
        ledger.withLock { ledger in
            for hash in failed {
                // Not rewritten: what it owed is still owed, and the next reconnect tries again.
                ledger.rewritten.remove(hash)
                if let count = owed[hash] { ledger.owed[hash, default: 0] += count }
            }
        }
        throw failure
    }

    /// Removes this node's counts (graceful shutdown).
    package func withdraw() async {
        let hashes = ledger.withLock { Set($0.tallies.keys).union($0.owed.keys) }
        _ = try? await client.pipeline(
            hashes.map { RedisCommand("HDEL", RedisArgument($0.value), RedisArgument(instance)) })
    }
}
