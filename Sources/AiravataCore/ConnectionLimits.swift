/// The three connection limits of the protocol.
package struct ConnectionLimits: Sendable, Equatable {
    package var perUser: Int
    package var perIP: Int
    package var global: Int

    package init(perUser: Int = 10, perIP: Int = 50, global: Int = 1000) {
        self.perUser = perUser
        self.perIP = perIP
        self.global = global
    }
}

/// Which limit refused a connection; `message` is what the client is told.
package enum ConnectionLimitExceeded: Error, Sendable, Equatable {
    case perUser(limit: Int)
    case perIP(limit: Int)
    case global(limit: Int)

    package var message: String {
        switch self {
        case .perUser(let limit): "Connection limit exceeded: at most \(limit) connections per user"
        case .perIP(let limit): "Connection limit exceeded: at most \(limit) connections per IP address"
        case .global(let limit): "Connection limit exceeded: the server accepts at most \(limit) connections"
        }
    }

    /// For metrics labels.
    package var kind: String {
        switch self {
        case .perUser: "user"
        case .perIP: "ip"
        case .global: "global"
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
    func release(_ lease: ConnectionLease) async
}
