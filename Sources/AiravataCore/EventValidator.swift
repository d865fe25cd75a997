package import AiravataProtocol

/// Turns a producer's JSON into validated events (without routing enrichment).
///
/// Accepted shape: `{type, data, id?, timestamp?, routing?}` or an array of those, where
/// `routing` may name `experimentId`, `projectId` and `ownerId` for events that do not
/// carry them (task events, progress events). Ids follow `Identifier`'s rules, a
/// `timestamp` is a real UTC instant, and a `system_status` may not carry a `ControlAction`.
package struct EventValidator: Sendable {
    package var maximumBatchSize: Int

    package init(maximumBatchSize: Int = 1000) {
        self.maximumBatchSize = maximumBatchSize
    }

    package struct Candidate: Sendable, Equatable {
        package var type: MessageType
        package var id: String?
        package var timestamp: String?
        package var data: JSONValue
        package var routing: EventRouting
    }

    package func validate(_ document: JSONValue) throws(IngestionError) -> [Candidate] {
        switch document {
        case .array(let elements):
            guard !elements.isEmpty else { throw IngestionError(field: nil, message: "the array holds no events") }
            guard elements.count <= maximumBatchSize else {
                throw IngestionError(
                    field: nil,
                    message: "a batch holds at most \(maximumBatchSize) events, this one \(elements.count)"
                )
            }
            var candidates: [Candidate] = []
            candidates.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                candidates.append(try candidate(element, path: "[\(index)]"))
            }
            return candidates
        case .object:
            return [try candidate(document, path: "")]
        default:
            throw IngestionError(field: nil, message: "the body must be an event object or an array of events")
        }
    }

    private func candidate(_ value: JSONValue, path: String) throws(IngestionError) -> Candidate {
        func field(_ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }
        guard let object = value.objectValue else {
            throw IngestionError(field: path.isEmpty ? nil : path, message: "must be an object, not \(value.kindName)")
        }
        guard let typeValue = object["type"] else { throw IngestionError(field: field("type"), message: "is missing") }
        guard let typeName = typeValue.stringValue else {
            throw IngestionError(field: field("type"), message: "must be a string")
        }
        guard let type = MessageType(rawValue: typeName), type.isEvent else {
            throw IngestionError(field: field("type"), message: "unknown event type \"\(typeName)\"")
        }
        guard let data = object["data"] else { throw IngestionError(field: field("data"), message: "is missing") }
        guard let dataObject = data.objectValue else {
            throw IngestionError(field: field("data"), message: "must be an object")
        }
        var id: String?
        if let idValue = object["id"], !idValue.isNull {
            guard let text = idValue.stringValue, !text.isEmpty else {
                throw IngestionError(field: field("id"), message: "must be a non-empty string")
            }
            guard Identifier.isValidEventID(text) else {
                throw IngestionError(field: field("id"), message: Identifier.eventIDRule)
            }
            id = text
        }
        var timestamp: String?
        if let timestampValue = object["timestamp"], !timestampValue.isNull {
            guard let text = timestampValue.stringValue, Timestamp.isValidISO8601(text) else {
                throw IngestionError(
                    field: field("timestamp"),
                    message: "must be an ISO 8601 UTC date-time such as 2024-01-15T10:30:00Z"
                )
            }
            timestamp = text
        }
        if type == .systemStatus, let action = dataObject["action"]?.stringValue, ControlAction(rawValue: action) != nil
        {
            throw IngestionError(
                field: field("data.action"),
                message: "\"\(action)\" is a gateway control action; producers may not publish it"
            )
        }
        var routing = try routingFields(for: type, data: dataObject, path: field("data"))
        if let explicit = object["routing"], !explicit.isNull {
            try applyExplicitRouting(explicit, to: &routing, path: field("routing"))
        }
        return Candidate(type: type, id: id, timestamp: timestamp, data: data, routing: routing)
    }

    private func routingFields(
        for type: MessageType,
        data: JSONObject,
        path: String
    ) throws(IngestionError) -> EventRouting {
        var routing = EventRouting(category: type.category)
        switch type.category {
        case .experiment:
            if type.isProgress {
                routing.experimentID = try requiredID(data, "experimentId", .resource, path: path)
            } else {
                let experiment = try requiredObject(data, "experiment", path: path)
                routing.experimentID = try requiredID(experiment, "id", .resource, path: "\(path).experiment")
                routing.projectID = try optionalID(experiment, "projectId", .resource, path: "\(path).experiment")
                routing.ownerID = try optionalID(experiment, "ownerId", .user, path: "\(path).experiment")
            }
        case .task:
            if type.isProgress {
                routing.taskID = try requiredID(data, "taskId", .resource, path: path)
                routing.experimentID = try optionalID(data, "experimentId", .resource, path: path)
            } else {
                let task = try requiredObject(data, "task", path: path)
                routing.taskID = try requiredID(task, "id", .resource, path: "\(path).task")
                routing.experimentID = try optionalID(task, "experimentId", .resource, path: "\(path).task")
            }
        case .worker:
            let worker = try requiredObject(data, "worker", path: path)
            routing.workerID = try requiredID(worker, "id", .resource, path: "\(path).worker")
        case .user:
            routing.userID = try requiredID(data, "userId", .user, path: path)
        case .system, .control:
            break
        }
        return routing
    }

    private func applyExplicitRouting(
        _ value: JSONValue,
        to routing: inout EventRouting,
        path: String
    ) throws(IngestionError) {
        guard let object = value.objectValue else { throw IngestionError(field: path, message: "must be an object") }
        if let experimentID = try optionalID(object, "experimentId", .resource, path: path) {
            routing.experimentID = experimentID
        }
        if let projectID = try optionalID(object, "projectId", .resource, path: path) { routing.projectID = projectID }
        if let ownerID = try optionalID(object, "ownerId", .user, path: path) { routing.ownerID = ownerID }
    }

    private func requiredObject(_ object: JSONObject, _ key: String, path: String) throws(IngestionError) -> JSONObject
    {
        guard let value = object[key] else { throw IngestionError(field: "\(path).\(key)", message: "is missing") }
        guard let nested = value.objectValue else {
            throw IngestionError(field: "\(path).\(key)", message: "must be an object")
        }
        return nested
    }

    /// Which rule of `Identifier` an id follows.
    private enum IDKind {
        case resource
        case user
    }

    private func requiredID(
        _ object: JSONObject,
        _ key: String,
        _ kind: IDKind,
        path: String
    ) throws(IngestionError) -> String {
        guard let value = try optionalID(object, key, kind, path: path) else {
            throw IngestionError(field: "\(path).\(key)", message: "is missing")
        }
        return value
    }

    private func optionalID(
        _ object: JSONObject,
        _ key: String,
        _ kind: IDKind,
        path: String
    ) throws(IngestionError) -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let text = value.stringValue, !text.isEmpty else {
            throw IngestionError(field: "\(path).\(key)", message: "must be a non-empty string")
        }
        switch kind {
        case .resource:
            guard Identifier.isValidResourceID(text) else {
                throw IngestionError(field: "\(path).\(key)", message: Identifier.resourceIDRule)
            }
        case .user:
            guard Identifier.isValidUserID(text) else {
                throw IngestionError(field: "\(path).\(key)", message: Identifier.userIDRule)
            }
        }
        return text
    }
}
