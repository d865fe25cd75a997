/// The protocol's message id formats. Event ids end in a Unix timestamp; we use
/// milliseconds so that two events of one resource within a second stay distinct.
public enum MessageID {
    public static func experiment(_ experimentID: String, unixMillis: Int64) -> String {
        "exp_\(experimentID)_\(unixMillis)"
    }

    public static func task(_ taskID: String, unixMillis: Int64) -> String {
        "task_\(taskID)_\(unixMillis)"
    }

    public static func worker(_ workerID: String, unixMillis: Int64) -> String {
        "worker_\(workerID)_\(unixMillis)"
    }

    public static func system(unixMillis: Int64) -> String {
        "system_\(unixMillis)"
    }

    public static func user(_ userID: String, unixMillis: Int64) -> String {
        "user_\(userID)_\(unixMillis)"
    }

    /// Ids of server-originated control messages: `ping-42`, `error-7`, `sub-response-3`.
    public static func control(_ prefix: String, sequence: Int) -> String {
        "\(prefix)-\(sequence)"
    }
}
