package import AiravataProtocol
import Synchronization

/// What a node keeps about a connection so that the client can resume it on any node:
/// whose it is and what it listens to.
package struct SessionRecord: Sendable, Equatable {
    /// Largest encoded record a node stores (the JSON `json` writes). With resource ids of
    /// at most 128 bytes, 100 subscriptions fit; the bound keeps one user from writing
    /// megabytes into Redis, and rewriting them on every subscribe.
    package static let maxEncodedBytes = 16 * 1024

    /// What a client is told when a subscription would make its session too large.
    package static let tooLargeMessage =
        "Subscription refused: the session would exceed \(maxEncodedBytes) bytes; unsubscribe from something first"

    /// The token's `sub`; only the same user may resume the session.
    package var userID: String
    package var subscriptions: [SubscriptionKey]

    package init(userID: String, subscriptions: [SubscriptionKey]) {
        self.userID = userID
        self.subscriptions = subscriptions
    }

    package var json: JSONValue {
        .object([
            "user": .string(userID),
            "subscriptions": .array(subscriptions.map { .string($0.description) }),
        ])
    }

    /// Whether the encoded record is within `maxEncodedBytes`.
    package var fitsInStore: Bool {
        json.jsonString.utf8.count <= Self.maxEncodedBytes
    }

    /// Nil for anything but what `json` writes.
    package init?(json: JSONValue) {
        guard case .object(let object) = json, let user = object["user"]?.stringValue,
            case .array(let keys)? = object["subscriptions"]
        else { return nil }
        var subscriptions: [SubscriptionKey] = []
        for key in keys {
            guard let text = key.stringValue, let parsed = SubscriptionKey(parsing: text) else { return nil }
            subscriptions.append(parsed)
        }
        self.init(userID: user, subscriptions: subscriptions)
    }
}

extension SubscriptionKey {
    /// Reads `description` back: `system`, or `<resource>:<id>`.
    package init?(parsing text: String) {
        if text == "system" {
            self = .system
            return
        }
        guard let colon = text.firstIndex(of: ":"),
            let resource = ResourceType(rawValue: String(text[..<colon])), resource != .system
        else { return nil }
        let id = String(text[text.index(after: colon)...])
        guard !id.isEmpty else { return nil }
        self.init(resource, id)
    }
}

/// A session by its id and its user, who owns it.
package struct SessionHandle: Sendable, Hashable {
    package var id: String
    package var userID: String

    package init(id: String, userID: String) {
        self.id = id
        self.userID = userID
    }
}

/// Where sessions live: in Redis for a cluster, in memory for a single node.
///
/// A session expires `ttl` after its last save or renewal; the node renews the sessions
/// of its open connections, so only disconnected sessions age.
///
/// A user keeps at most `sessionsPerUser` sessions: saving one more evicts the user's
/// oldest (the one saved or renewed longest ago). Evicting rather than refusing, because a
/// session comes with every connection: refusing would lock out a user whose client
/// reconnected often (each time without resuming) for a whole session lifetime, while the
/// oldest session is almost always one whose client left long ago; losing it costs at most
/// that client a `session_expired` resume and a refetch.
package protocol SessionStore: Sendable {
    func save(_ id: String, _ record: SessionRecord, sessionsPerUser: Int) async throws
    func load(_ id: String) async throws -> SessionRecord?
    func renew(_ sessions: [SessionHandle]) async throws
}

/// Sessions of a single node, lost when it stops.
package final class InMemorySessionStore: SessionStore {
    private struct Stored {
        var record: SessionRecord
        var expiresAtNanos: UInt64
    }

    private struct Sessions {
        var stored: [String: Stored] = [:]
        /// Each user's session ids; at most `sessionsPerUser` live ones.
        var byUser: [ExactString: [String]] = [:]
        var saves = 0

        mutating func sweep(now: UInt64) {
            stored = stored.filter { $0.value.expiresAtNanos > now }
            byUser = byUser.compactMapValues { ids in
                let live = ids.filter { stored[$0] != nil }
                return live.isEmpty ? nil : live
            }
        }
    }

    private let ttlNanos: UInt64
    private let clock: @Sendable () -> UInt64
    private let sessions = Mutex(Sessions())

    package init(ttlSeconds: Double, clock: @escaping @Sendable () -> UInt64 = { WallClock.monotonicNanos() }) {
        self.ttlNanos = UInt64(max(ttlSeconds, 0.001) * 1e9)
        self.clock = clock
    }

    package func save(_ id: String, _ record: SessionRecord, sessionsPerUser: Int) async throws {
        let now = clock()
        sessions.withLock { sessions in
            sessions.stored[id] = Stored(record: record, expiresAtNanos: now + ttlNanos)
            let user = ExactString(record.userID)
            var ids = (sessions.byUser[user] ?? []).filter { other in
                guard other != id, let stored = sessions.stored[other] else { return false }
                return stored.expiresAtNanos > now && stored.record.userID.hasSameBytes(as: record.userID)
            }
            ids.append(id)
            while ids.count > max(sessionsPerUser, 1) {
                let oldest = ids.indices.min { left, right in
                    (sessions.stored[ids[left]]?.expiresAtNanos ?? 0)
                        < (sessions.stored[ids[right]]?.expiresAtNanos ?? 0)
                }
                guard let oldest else { break }
                sessions.stored[ids.remove(at: oldest)] = nil
            }
            sessions.byUser[user] = ids
            // Sweep every 1,024 saves so that abandoned sessions do not pile up.
            sessions.saves += 1
            if sessions.saves % 1024 == 0 { sessions.sweep(now: now) }
        }
    }

    package func load(_ id: String) async throws -> SessionRecord? {
        let now = clock()
        return sessions.withLock { sessions in
            guard let stored = sessions.stored[id] else { return nil }
            guard stored.expiresAtNanos > now else {
                sessions.stored[id] = nil
                return nil
            }
            return stored.record
        }
    }

    package func renew(_ handles: [SessionHandle]) async throws {
        let now = clock()
        sessions.withLock { sessions in
            for handle in handles where sessions.stored[handle.id] != nil {
                sessions.stored[handle.id]?.expiresAtNanos = now + ttlNanos
            }
        }
    }

    /// How many live sessions the user has (for tests and diagnostics).
    package func count(of userID: String) -> Int {
        let now = clock()
        return sessions.withLock { sessions in
            (sessions.byUser[ExactString(userID)] ?? []).filter { (sessions.stored[$0]?.expiresAtNanos ?? 0) > now }
                .count
        }
    }
}
