package import AiravataProtocol
import Synchronization

/// What a node keeps about a connection so that the client can resume it on any node:
/// whose it is and what it listens to.
package struct SessionRecord: Sendable, Equatable {
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

/// Where sessions live: in Redis for a cluster, in memory for a single node.
///
/// A session expires `ttl` after its last save or renewal; the node renews the sessions
/// of its open connections, so only disconnected sessions age.
package protocol SessionStore: Sendable {
    func save(_ id: String, _ record: SessionRecord) async throws
    func load(_ id: String) async throws -> SessionRecord?
    func renew(_ ids: [String]) async throws
}

/// Sessions of a single node, lost when it stops.
package final class InMemorySessionStore: SessionStore {
    private struct Stored {
        var record: SessionRecord
        var expiresAtNanos: UInt64
    }

    private let ttlNanos: UInt64
    private let clock: @Sendable () -> UInt64
    private let sessions = Mutex<(stored: [String: Stored], saves: Int)>(([:], 0))

    package init(ttlSeconds: Double, clock: @escaping @Sendable () -> UInt64 = { WallClock.monotonicNanos() }) {
        self.ttlNanos = UInt64(max(ttlSeconds, 0.001) * 1e9)
        self.clock = clock
    }

    package func save(_ id: String, _ record: SessionRecord) async throws {
        let now = clock()
        sessions.withLock { sessions in
            sessions.stored[id] = Stored(record: record, expiresAtNanos: now + ttlNanos)
            // Sweep every 1,024 saves so that abandoned sessions do not pile up.
            sessions.saves += 1
            if sessions.saves % 1024 == 0 { sessions.stored = sessions.stored.filter { $0.value.expiresAtNanos > now } }
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

    package func renew(_ ids: [String]) async throws {
        let now = clock()
        sessions.withLock { sessions in
            for id in ids where sessions.stored[id] != nil {
                sessions.stored[id]?.expiresAtNanos = now + ttlNanos
            }
        }
    }
}
