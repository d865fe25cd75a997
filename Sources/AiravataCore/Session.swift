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

    /// Whether the encoded record is within `maxEncodedBytes`. Asked at every connect; the
    /// record is encoded for the answer only when `encodedSizeBound` does not settle it.
    package var fitsInStore: Bool {
        encodedSizeBound <= Self.maxEncodedBytes || json.jsonString.utf8.count <= Self.maxEncodedBytes
    }

    /// At least the length of `json` encoded, counted without encoding: an escaped byte takes
    /// at most six (`\u001f`); a key's text is a resource name of at most ten bytes, a colon
    /// and the id; each string adds its two quotes and a comma.
    package var encodedSizeBound: Int {
        var bound = 32 + 6 * userID.utf8.count  // {"user":"","subscriptions":[]} is 30 bytes
        for key in subscriptions { bound += 3 + 6 * (11 + key.id.utf8.count) }
        return bound
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
        /// Each user's session ids. May still hold ids that expired or were evicted: they
        /// are dropped when the user's count passes its limit and at each sweep, so a save
        /// costs the same whatever the number of the user's sessions until then.
        var byUser: [ExactString: Set<String>] = [:]
        var saves = 0

        func isLive(_ id: String, of userID: String, now: UInt64) -> Bool {
            guard let stored = stored[id] else { return false }
            return stored.expiresAtNanos > now && stored.record.userID.hasSameBytes(as: userID)
        }

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
        let limit = max(sessionsPerUser, 1)
        sessions.withLock { sessions in
            sessions.stored[id] = Stored(record: record, expiresAtNanos: now + ttlNanos)
            let user = ExactString(record.userID)
            sessions.byUser[user, default: []].insert(id)
            if sessions.byUser[user]!.count > limit {
                // Over the limit (or holding ids that are gone): the live ones are counted,
                // and the oldest evicted. Scanning the user's sessions on every save instead
                // made a storm of one user's connects quadratic (with a limit raised for a
                // service account, 5,000 connects took 450 µs of CPU each, not 220).
                var ids = sessions.byUser[user]!.filter { sessions.isLive($0, of: record.userID, now: now) }
                func expiry(_ id: String) -> UInt64 { sessions.stored[id]?.expiresAtNanos ?? 0 }
                // Never the session being saved, which may tie with another on the clock.
                if ids.count == limit + 1 {
                    // The usual case at the limit: one out, found by a scan.
                    if let oldest = ids.filter({ $0 != id }).min(by: { (expiry($0), $0) < (expiry($1), $1) }) {
                        ids.remove(oldest)
                        sessions.stored[oldest] = nil
                    }
                } else if ids.count > limit {
                    // Sorted once: a limit lowered by a restart can leave thousands to evict.
                    let byAge = ids.filter { $0 != id }.sorted { (expiry($0), $0) < (expiry($1), $1) }
                    for oldest in byAge.prefix(ids.count - limit) {
                        ids.remove(oldest)
                        sessions.stored[oldest] = nil
                    }
                }
                sessions.byUser[user] = ids
            }
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
            (sessions.byUser[ExactString(userID)] ?? []).filter { sessions.isLive($0, of: userID, now: now) }.count
        }
    }
}
