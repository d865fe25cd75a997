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
        forEachKey { keys.append($0) }
        return keys
    }

    /// The same keys, in the same order, without an array: the delivery lookup runs this
    /// for every event on every node.
    package func forEachKey(_ body: (SubscriptionKey) -> Void) {
        switch category {
        case .task:
            if let taskID { body(SubscriptionKey(.task, taskID)) }
            fallthrough
        case .experiment:
            if let experimentID { body(SubscriptionKey(.experiment, experimentID)) }
            if let projectID { body(SubscriptionKey(.project, projectID)) }
            if let ownerID { body(SubscriptionKey(.user, ownerID)) }
        case .worker:
            if let workerID { body(SubscriptionKey(.worker, workerID)) }
            body(.system)
        case .user:
            if let userID { body(SubscriptionKey(.user, userID)) }
        case .system, .control:
            break
        }
    }
}
