/// Every `type` value of the wire protocol, plus `user_notification` (our addition).
public enum MessageType: String, Sendable, CaseIterable {
    case ping
    case pong
    case systemStatus = "system_status"
    case error

    case experimentCreated = "experiment_created"
    case experimentUpdated = "experiment_updated"
    case experimentProgress = "experiment_progress"
    case experimentCompleted = "experiment_completed"
    case experimentFailed = "experiment_failed"

    case taskCreated = "task_created"
    case taskUpdated = "task_updated"
    case taskProgress = "task_progress"
    case taskCompleted = "task_completed"
    case taskFailed = "task_failed"

    case workerRegistered = "worker_registered"
    case workerUpdated = "worker_updated"
    case workerOffline = "worker_offline"

    case userNotification = "user_notification"

    /// The family an event type belongs to; it decides id format and routing.
    public enum Category: Sendable {
        case control
        case experiment
        case task
        case worker
        case system
        case user
    }

    public var category: Category {
        switch self {
        case .ping, .pong, .error: .control
        case .systemStatus: .system
        case .experimentCreated, .experimentUpdated, .experimentProgress, .experimentCompleted, .experimentFailed:
            .experiment
        case .taskCreated, .taskUpdated, .taskProgress, .taskCompleted, .taskFailed: .task
        case .workerRegistered, .workerUpdated, .workerOffline: .worker
        case .userNotification: .user
        }
    }

    /// Whether a producer may publish this type through the ingestion API.
    public var isEvent: Bool {
        category != .control
    }

    /// Progress events carry flat ids (`data.experimentId`); the others a nested object.
    public var isProgress: Bool {
        self == .experimentProgress || self == .taskProgress
    }
}
