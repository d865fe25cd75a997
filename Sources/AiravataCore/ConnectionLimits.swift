/// The connection limits. The protocol's per-user, per-IP and global limits count across the
/// cluster when nodes share Redis; the per-node limit is this node's own capacity, so adding
/// a node adds capacity (see docs/operations.md, "Connection limits").
package struct ConnectionLimits: Sendable, Equatable {
    package var perUser: Int
    package var perIP: Int
    /// Connections in the whole cluster (`--max-connections-cluster`); 0 for no cap.
    package var global: Int
    /// Connections on this node (`--max-connections-per-node`); 0 for no cap.
    package var perNode: Int

    package init(perUser: Int = 10, perIP: Int = 50, global: Int = 1000, perNode: Int = 0) {
        self.perUser = perUser
        self.perIP = perIP
        self.global = global
        self.perNode = perNode
    }

    /// The cluster-wide cap as a number to compare with; "none" is a count no cluster reaches.
    package var effectiveGlobal: Int { global > 0 ? global : Int(Int32.max) }
}

/// Which limit refused a connection; `message` is what the client is told.
package enum ConnectionLimitExceeded: Error, Sendable, Equatable {
    case perUser(limit: Int)
    case perIP(limit: Int)
    case global(limit: Int)
    case perNode(limit: Int)

    package var message: String {
        switch self {
        case .perUser(let limit): "Connection limit exceeded: at most \(limit) connections per user"
        case .perIP(let limit): "Connection limit exceeded: at most \(limit) connections per IP address"
        case .global(let limit): "Connection limit exceeded: the server accepts at most \(limit) connections"
        case .perNode(let limit): "Connection limit exceeded: this node accepts at most \(limit) connections"
        }
    }

    /// For metrics labels.
    package var kind: String {
        switch self {
        case .perUser: "user"
        case .perIP: "ip"
        case .global: "global"
        case .perNode: "node"
        }
    }
}

/// One admitted connection's share of the counts; handed back on disconnect.
package struct ConnectionLease: Sendable, Hashable {
    package var id: UInt64
    package var userID: String
    package var ip: String

    package init(id: UInt64, userID: String, ip: String) {
        self.id = id
        self.userID = userID
        self.ip = ip
    }
}

/// Admits connections against the limits. The Redis implementation counts cluster-wide.
package protocol ConnectionLimiter: Sendable {
    func admit(_ lease: ConnectionLease) async throws -> Result<Void, ConnectionLimitExceeded>
    /// Admits, and saves the session the connection opens in the same step, when the
    /// limiter's store holds that session store's sessions too: one Redis round trip per
    /// connect instead of two. Nil when it cannot; the caller then admits and saves apart.
    func admit(_ lease: ConnectionLease, opening session: OpeningSession) async throws -> AdmissionWithSession?
    func release(_ lease: ConnectionLease) async
}

extension ConnectionLimiter {
    package func admit(_ lease: ConnectionLease, opening session: OpeningSession) async throws
        -> AdmissionWithSession?
    { nil }
}

/// The session a connection being admitted opens (or resumes), to be saved with its admission.
package struct OpeningSession: Sendable {
    package var id: String
    package var record: SessionRecord
    package var sessionsPerUser: Int
    /// Where the session belongs; the limiter saves it only when it writes to the same place.
    package var store: any SessionStore

    package init(id: String, record: SessionRecord, sessionsPerUser: Int, store: any SessionStore) {
        self.id = id
        self.record = record
        self.sessionsPerUser = sessionsPerUser
        self.store = store
    }
}

/// What a joint admission did.
package enum AdmissionWithSession: Sendable, Equatable {
    /// Admitted, with the session saved, or not (`saveFailure` says why): the connection
    /// works on, only a later resume would miss the session.
    case admitted(saveFailure: String?)
    case refused(ConnectionLimitExceeded)
}
