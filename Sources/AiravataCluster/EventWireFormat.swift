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

    /// The year 3000: later acceptance times are corrupt, and would skew the latency figures.
    static let maxAcceptedAtMicros: Int64 = 32_503_680_000_000_000

    /// Nil for anything but what `encode` writes: the bytes come from Redis, where anyone
    /// with access can publish, so every field is checked as strictly as client input.
    static func decode(_ bytes: [UInt8]) -> GatewayEvent? {
        guard let value = try? JSONValue(parsing: bytes), let object = value.objectValue,
            let typeName = object["t"]?.stringValue, let type = MessageType(rawValue: typeName),
            let id = object["i"]?.stringValue, let timestamp = object["s"]?.stringValue,
            let data = object["d"], case .number(let acceptedText)? = object["a"],
            let acceptedAtMicros = Int64(acceptedText), (0...maxAcceptedAtMicros).contains(acceptedAtMicros)
        else { return nil }
        let fields: JSONObject
        switch object["r"] {
        case nil: fields = [:]
        case .object(let object)?: fields = object
        default: return nil
        }
        // Routing ids pick who receives the event and become keys: checked like a client's.
        struct InvalidID: Error {}
        func routingID(_ key: String, _ isValid: (String) -> Bool) throws(InvalidID) -> String? {
            guard let field = fields[key] else { return nil }
            guard let text = field.stringValue, isValid(text) else { throw InvalidID() }
            return text
        }
        let routing: EventRouting
        do {
            routing = EventRouting(
                category: type.category,
                experimentID: try routingID("e", Identifier.isValidResourceID),
                taskID: try routingID("k", Identifier.isValidResourceID),
                workerID: try routingID("w", Identifier.isValidResourceID),
                projectID: try routingID("p", Identifier.isValidResourceID),
                ownerID: try routingID("o", Identifier.isValidUserID),
                userID: try routingID("u", Identifier.isValidUserID)
            )
        } catch {
            return nil
        }
        return GatewayEvent(
            type: type,
            id: id,
            timestamp: timestamp,
            data: data,
            routing: routing,
            acceptedAtMicros: acceptedAtMicros
        )
    }
}
