/// Who is on the other end of a connection or an ingestion request, as the token says.
package struct Principal: Sendable, Equatable {
    package var userID: String
    package var projects: Set<String>
    package var roles: Set<String>

    package init(userID: String, projects: Set<String> = [], roles: Set<String> = []) {
        self.userID = userID
        self.projects = projects
        self.roles = roles
    }

    package var isAdmin: Bool { roles.contains(Role.admin) }
    package var mayPublish: Bool { roles.contains(Role.service) }

    package enum Role {
        package static let admin = "admin"
        package static let service = "service"
    }
}
