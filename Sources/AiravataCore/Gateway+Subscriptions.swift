package import AiravataProtocol
import Logging

/// Subscribe and unsubscribe requests: authorised, saved to the session, then applied.
extension Gateway {
    /// Handles a subscribe request and returns the reply for the client. The session is
    /// saved before the subscription takes effect, so a confirmed subscription survives a
    /// reconnect to any node.
    package func subscribe(_ request: ClientMessage.SubscriptionRequest, for admission: Admission) async -> Envelope {
        switch Authorization.subscribe(request, principal: admission.principal) {
        case .refused(let reason):
            return subscriptionError(reason, action: .subscribe, request: request)
        case .allowed(let key):
            let current = index.subscriptions(of: admission.id)
            if !current.contains(key) {
                guard current.count < configuration.maxSubscriptionsPerConnection else {
                    return subscriptionError(
                        "Subscription limit reached: at most \(configuration.maxSubscriptionsPerConnection) per connection",
                        action: .subscribe,
                        request: request
                    )
                }
                let record = SessionRecord(userID: admission.principal.userID, subscriptions: Array(current) + [key])
                guard record.fitsInStore else {
                    return subscriptionError(SessionRecord.tooLargeMessage, action: .subscribe, request: request)
                }
                // A confirmed subscription must survive a reconnect: unsaved, it is refused.
                let saved = await persist(admission.sessionID, record)
                guard saved else {
                    return subscriptionError(
                        "Service temporarily unavailable: the subscription could not be saved", action: .subscribe,
                        request: request)
                }
            }
            switch index.subscribe(admission.id, to: key, limit: configuration.maxSubscriptionsPerConnection) {
            case .added, .alreadySubscribed:
                return subscriptionReply(action: .subscribed, key: key)
            case .limitReached:
                return subscriptionError(
                    "Subscription limit reached: at most \(configuration.maxSubscriptionsPerConnection) per connection",
                    action: .subscribe,
                    request: request
                )
            case .unknownConnection:
                return subscriptionError("Connection is closing", action: .subscribe, request: request)
            }
        }
    }

    package func unsubscribe(_ request: ClientMessage.SubscriptionRequest, for admission: Admission) async -> Envelope {
        let key: SubscriptionKey
        switch request.resourceType {
        case .user: key = SubscriptionKey(.user, request.resourceID ?? admission.principal.userID)
        case .system: key = .system
        default: key = SubscriptionKey(request.resourceType, request.resourceID ?? "")
        }
        if index.unsubscribe(admission.id, from: key) {
            let remaining = Array(index.subscriptions(of: admission.id))
            await persist(
                admission.sessionID, SessionRecord(userID: admission.principal.userID, subscriptions: remaining))
        }
        return subscriptionReply(action: .unsubscribed, key: key)
    }

    func subscriptionReply(action: ControlAction, key: SubscriptionKey) -> Envelope {
        var data: JSONObject = ["action": .string(action.rawValue), "resourceType": .string(key.resource.rawValue)]
        if key.resource != .system { data["resourceId"] = .string(key.id) }
        data["status"] = .string("success")
        return control(.systemStatus, prefix: "sub-response", data: .object(data))
    }

    func subscriptionError(
        _ reason: String,
        action: ControlAction,
        request: ClientMessage.SubscriptionRequest
    ) -> Envelope {
        var data: JSONObject = [
            "action": .string(action.rawValue), "resourceType": .string(request.resourceType.rawValue),
        ]
        // An id that breaks the rules is not echoed: it may be long, and the error says why.
        if let id = request.resourceID, request.resourceIDProblem == nil { data["resourceId"] = .string(id) }
        data["status"] = .string("error")
        var envelope = control(.error, prefix: "error", data: .object(data))
        envelope.error = reason
        return envelope
    }
}
