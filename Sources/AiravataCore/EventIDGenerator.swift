package import AiravataProtocol
import Synchronization

/// Assigns protocol-format ids. The timestamp part is Unix milliseconds, bumped per
/// subject so that two events of one resource never share an id on this node.
package final class EventIDGenerator: Sendable {
    private let lastMillis = Mutex<[String: Int64]>([:])

    package init() {}

    package func id(for type: MessageType, routing: EventRouting, nowMicros: Int64) -> String {
        let subject: String
        switch type.category {
        case .experiment: subject = "exp_\(routing.experimentID ?? "")"
        case .task: subject = "task_\(routing.taskID ?? "")"
        case .worker: subject = "worker_\(routing.workerID ?? "")"
        case .user: subject = "user_\(routing.userID ?? "")"
        case .system, .control: subject = "system"
        }
        let millis = lastMillis.withLock { last in
            if last.count > 50_000 { last.removeAll(keepingCapacity: true) }
            let candidate = max(nowMicros / 1000, (last[subject] ?? 0) + 1)
            last[subject] = candidate
            return candidate
        }
        switch type.category {
        case .experiment: return MessageID.experiment(routing.experimentID ?? "", unixMillis: millis)
        case .task: return MessageID.task(routing.taskID ?? "", unixMillis: millis)
        case .worker: return MessageID.worker(routing.workerID ?? "", unixMillis: millis)
        case .user: return MessageID.user(routing.userID ?? "", unixMillis: millis)
        case .system, .control: return MessageID.system(unixMillis: millis)
        }
    }
}
