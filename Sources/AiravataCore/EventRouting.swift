package import AiravataProtocol

/// Where an event goes and who owns it; travels with the event on the bus but never
/// reaches clients.
package struct EventRouting: Sendable, Equatable {
    package var category: MessageType.Category
    package var experimentID: String?
    package var taskID: String?
    package var workerID: String?
    package var projectID: String?
    package var ownerID: String?
    /// The addressee of a `user_notification`.
    package var userID: String?

    package init(
        category: MessageType.Category,
        experimentID: String? = nil,
        taskID: String? = nil,
        workerID: String? = nil,
        projectID: String? = nil,
        ownerID: String? = nil,
        userID: String? = nil
    ) {
        self.category = category
        self.experimentID = experimentID
        self.taskID = taskID
        self.workerID = workerID
        self.projectID = projectID
        self.ownerID = ownerID
        self.userID = userID
    }

    /// System events reach every connection, subscribed or not.
    package var isBroadcast: Bool { category == .system }

    /// The subscriptions this event reaches (the protocol's "Event Routing").
    package var keys: [SubscriptionKey] {
        var keys: [SubscriptionKey] = []
        switch category {
        case .task:
            if let taskID { keys.append(SubscriptionKey(.task, taskID)) }
            fallthrough
        case .experiment:
            if let experimentID { keys.append(SubscriptionKey(.experiment, experimentID)) }
            if let projectID { keys.append(SubscriptionKey(.project, projectID)) }
            if let ownerID { keys.append(SubscriptionKey(.user, ownerID)) }
        case .worker:
            if let workerID { keys.append(SubscriptionKey(.worker, workerID)) }
            keys.append(.system)
        case .user:
            if let userID { keys.append(SubscriptionKey(.user, userID)) }
        case .system, .control:
            break
        }
        return keys
    }
}
