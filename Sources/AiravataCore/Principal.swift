package import AiravataProtocol

/// Who is on the other end of a connection or an ingestion request, as the token says.
///
/// Every comparison of an identity goes through `ExactString`: claims compare as bytes
/// (RFC 7519), so a `sub` or a project spelled in another Unicode normal form is another one.
package struct Principal: Sendable, Equatable {
    package let userID: String
    package let projects: Set<ExactString>
    package let roles: Set<ExactString>
    /// The two roles the gateway acts on, looked up once: every delivery asks `isAdmin` of
    /// each recipient, and a set lookup hashed the role's name each time.
    package let isAdmin: Bool
    package let mayPublish: Bool

    /// Arrays, not sets of `String`: a `Set<String>` would already merge two spellings.
    package init(userID: String, projects: [String] = [], roles: [String] = []) {
        self.userID = userID
        self.projects = Set(projects.map { ExactString($0) })
        let roles = Set(roles.map { ExactString($0) })
        self.roles = roles
        isAdmin = roles.contains(Role.admin)
        mayPublish = roles.contains(Role.service)
    }

    /// Whether `id` is this principal's user id, byte for byte.
    package func isUser(_ id: String) -> Bool {
        userID.hasSameBytes(as: id)
    }

    /// Whether the token lists project `id`, byte for byte.
    package func isMember(ofProject id: String) -> Bool {
        projects.contains(ExactString(id))
    }

    package static func == (lhs: Principal, rhs: Principal) -> Bool {
        lhs.isUser(rhs.userID) && lhs.projects == rhs.projects && lhs.roles == rhs.roles
    }

    package enum Role {
        package static let admin: ExactString = "admin"
        package static let service: ExactString = "service"
    }
}
