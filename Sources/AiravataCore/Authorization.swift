package import AiravataProtocol

/// Who may subscribe to what and who may see which event (design §3). Events are
/// checked at delivery, because only the event knows its owner and project.
package enum Authorization {
    package enum SubscribeDecision: Equatable, Sendable {
        case allowed(SubscriptionKey)
        case refused(String)
    }

    package static func subscribe(
        _ request: ClientMessage.SubscriptionRequest,
        principal: Principal
    ) -> SubscribeDecision {
        switch request.resourceType {
        case .experiment, .task:
            // Ownership is unknown here; each event is checked when it is delivered.
            guard let id = request.resourceID else { return .refused("resourceId is required") }
            return .allowed(SubscriptionKey(request.resourceType, id))
        case .project:
            guard let id = request.resourceID else { return .refused("resourceId is required") }
            guard principal.isAdmin || principal.projects.contains(id) else {
                return .refused("Not authorized for project \(id)")
            }
            return .allowed(SubscriptionKey(.project, id))
        case .user:
            let id = request.resourceID ?? principal.userID
            guard principal.isAdmin || id == principal.userID else {
                return .refused("Not authorized for user \(id)")
            }
            return .allowed(SubscriptionKey(.user, id))
        case .worker:
            guard let id = request.resourceID else { return .refused("resourceId is required") }
            guard principal.isAdmin else { return .refused("Worker events require the admin role") }
            return .allowed(SubscriptionKey(.worker, id))
        case .system:
            guard principal.isAdmin else { return .refused("System events require the admin role") }
            return .allowed(.system)
        }
    }

    package static func mayReceive(_ routing: EventRouting, principal: Principal) -> Bool {
        if principal.isAdmin { return true }
        switch routing.category {
        case .system, .control:
            return true
        case .experiment, .task:
            if let ownerID = routing.ownerID, ownerID == principal.userID { return true }
            if let projectID = routing.projectID, principal.projects.contains(projectID) { return true }
            return false
        case .worker:
            return false
        case .user:
            return routing.userID == principal.userID
        }
    }
}
