import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport

/// One reference message per type, with the field names and JSON types of the protocol's
/// examples (the values are ours). The server's messages must have exactly these shapes.
enum SpecReferences {
    static let experimentBody =
        #"{"experiment":{"id":"e-1","name":"Ref","status":"CREATED","ownerId":"u-1","projectId":"p-1"},"summary":{"id":"e-1","name":"Ref","status":"CREATED","ownerId":"u-1"}}"#
    static let taskBody =
        #"{"task":{"id":"t-1","experimentId":"e-1","status":"CREATED","command":"run","workerId":null},"summary":{"id":"t-1","experimentId":"e-1","status":"CREATED","workerId":null}}"#
    static let taskFailedBody =
        #"{"task":{"id":"t-1","experimentId":"e-1","status":"FAILED","command":"run","workerId":"w-1","error":"boom"},"summary":{"id":"t-1","experimentId":"e-1","status":"FAILED","workerId":"w-1","error":"boom"}}"#
    static let workerBody =
        #"{"worker":{"id":"w-1","computeResourceId":"c-1","experimentId":"e-1","status":"RUNNING","currentTaskId":null},"summary":{"id":"w-1","computeResourceId":"c-1","experimentId":"e-1","status":"RUNNING"}}"#
    static let experimentProgressBody =
        #"{"experimentId":"e-1","totalTasks":10,"completedTasks":4,"failedTasks":1,"runningTasks":2,"progressPercent":40.0,"estimatedTimeRemaining":"5m","lastUpdated":"2025-03-01T08:00:00Z"}"#
    static let taskProgressBody =
        #"{"taskId":"t-1","experimentId":"e-1","status":"RUNNING","progressPercent":10.5,"currentStage":"RUNNING","workerId":"w-1","startedAt":"2025-03-01T08:00:00Z","estimatedCompletion":"2025-03-01T09:00:00Z","lastUpdated":"2025-03-01T08:10:00Z"}"#

    /// Event types with the body the producer sends and the id pattern the server assigns.
    static let events: [(type: String, body: String, idPrefix: String)] = [
        ("experiment_created", experimentBody, "exp_e-1_"),
        ("experiment_updated", experimentBody, "exp_e-1_"),
        ("experiment_progress", experimentProgressBody, "exp_e-1_"),
        ("experiment_completed", experimentBody, "exp_e-1_"),
        ("experiment_failed", experimentBody, "exp_e-1_"),
        ("task_created", taskBody, "task_t-1_"),
        ("task_updated", taskBody, "task_t-1_"),
        ("task_progress", taskProgressBody, "task_t-1_"),
        ("task_completed", taskBody, "task_t-1_"),
        ("task_failed", taskFailedBody, "task_t-1_"),
        ("worker_registered", workerBody, "worker_w-1_"),
        ("worker_updated", workerBody, "worker_w-1_"),
        ("worker_offline", workerBody, "worker_w-1_"),
    ]

    static let ping = #"{"type":"ping","id":"ping-1","timestamp":"2025-03-01T08:00:00Z"}"#
    static let pong = #"{"type":"pong","id":"pong-1","timestamp":"2025-03-01T08:00:00Z"}"#
    static let error = #"{"type":"error","id":"error-1","timestamp":"2025-03-01T08:00:00Z","error":"x"}"#
    static let systemStatus =
        #"{"type":"system_status","id":"system-1","timestamp":"2025-03-01T08:00:00Z","data":{"totalConnections":1,"activeConnections":1,"totalMessages":1,"messagesPerSecond":1.5,"averageLatency":"0.05s","uptime":"1s"}}"#
    static let subscribed =
        #"{"type":"system_status","id":"sub-response-1","timestamp":"2025-03-01T08:00:00Z","data":{"action":"subscribed","resourceType":"experiment","resourceId":"e-1","status":"success"}}"#

    static func envelope(type: String, body: String) throws -> JSONValue {
        try JSONValue(parsing: #"{"type":"\#(type)","id":"x","timestamp":"2025-03-01T08:00:00Z","data":\#(body)}"#)
    }
}

/// The message with our additive fields removed, for comparison with a reference.
func withoutAdditions(_ message: JSONValue) -> JSONValue {
    guard case .object(var object) = message else { return message }
    object["cursor"] = nil
    if case .object(var data) = object["data"] ?? .null, object["type"]?.stringValue == "system_status" {
        data["deliveries"] = nil
        data["nodeId"] = nil
        data["nodes"] = nil
        data["latency"] = nil
        object["data"] = .object(data)
    }
    return .object(object)
}
