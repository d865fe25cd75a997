import AiravataCore
import AiravataProtocol

/// How an event travels between nodes: compact JSON with its routing, which clients
/// never see. Decoded once per event on each node.
enum EventWireFormat {
    static func encode(_ event: GatewayEvent) -> [UInt8] {
        var routing = JSONObject()
        let fields: [(String, String?)] = [
            ("e", event.routing.experimentID), ("k", event.routing.taskID), ("w", event.routing.workerID),
            ("p", event.routing.projectID), ("o", event.routing.ownerID), ("u", event.routing.userID),
        ]
        for (key, value) in fields {
            if let value { routing[key] = .string(value) }
        }
        let object: JSONObject = [
            "t": .string(event.type.rawValue), "i": .string(event.id), "s": .string(event.timestamp),
            "a": .integer(event.acceptedAtMicros), "r": .object(routing), "d": event.data,
        ]
        var bytes: [UInt8] = []
        object.write(into: &bytes)
        return bytes
    }

    static func decode(_ bytes: [UInt8]) -> GatewayEvent? {
        guard let value = try? JSONValue(parsing: bytes), let object = value.objectValue,
            let typeName = object["t"]?.stringValue, let type = MessageType(rawValue: typeName),
            let id = object["i"]?.stringValue, let timestamp = object["s"]?.stringValue,
            let data = object["d"]
        else { return nil }
        let routing = object["r"]?.objectValue ?? JSONObject()
        return GatewayEvent(
            type: type,
            id: id,
            timestamp: timestamp,
            data: data,
            routing: EventRouting(
                category: type.category,
                experimentID: routing["e"]?.stringValue,
                taskID: routing["k"]?.stringValue,
                workerID: routing["w"]?.stringValue,
                projectID: routing["p"]?.stringValue,
                ownerID: routing["o"]?.stringValue,
                userID: routing["u"]?.stringValue
            ),
            acceptedAtMicros: Int64(object["a"]?.doubleValue ?? 0)
        )
    }
}
