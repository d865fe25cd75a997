package import AiravataProtocol

/// Who may subscribe to what and who may see which event (design §3). Events are
/// checked at delivery, because only the event knows its owner and project. Identities
/// compare as bytes (`Principal.isUser`, `Principal.isMember(ofProject:)`).
package enum Authorization {
    package enum SubscribeDecision: Equatable, Sendable {
        case allowed(SubscriptionKey)
        case refused(String)
    }

    package static func subscribe(
        _ request: ClientMessage.SubscriptionRequest,
        principal: Principal
    ) -> SubscribeDecision {
        // Path subscriptions and restored sessions arrive here without passing `ClientMessage`.
        if let problem = request.resourceIDProblem {
            return .refused(ClientMessage.ParseError.invalidSubscription(problem).message)
        }
        switch request.resourceType {
        case .experiment, .task:
            // Ownership is unknown here; each event is checked when it is delivered.
            guard let id = request.resourceID else { return .refused("resourceId is required") }
            return .allowed(SubscriptionKey(request.resourceType, id))
        case .project:
            guard let id = request.resourceID else { return .refused("resourceId is required") }
            guard principal.isAdmin || principal.isMember(ofProject: id) else {
                return .refused("Not authorized for project \(id)")
            }
            return .allowed(SubscriptionKey(.project, id))
        case .user:
            let id = request.resourceID ?? principal.userID
            guard principal.isAdmin || principal.isUser(id) else {
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
            if let ownerID = routing.ownerID, principal.isUser(ownerID) { return true }
            if let projectID = routing.projectID, principal.isMember(ofProject: projectID) { return true }
            return false
        case .worker:
            return false
        case .user:
            return routing.userID.map(principal.isUser) ?? false
        }
    }
}
