/// What a client may send over its WebSocket.
public enum ClientMessage: Sendable, Equatable {
    case ping(id: String?)
    case pong
    case subscribe(SubscriptionRequest)
    case unsubscribe(SubscriptionRequest)
    /// A `system_status` message without an action asks for the statistics.
    case statusRequest

    public struct SubscriptionRequest: Sendable, Equatable {
        public var resourceType: ResourceType
        /// Absent for `user` (meaning the token's own user) and `system`.
        public var resourceID: String?

        public init(resourceType: ResourceType, resourceID: String?) {
            self.resourceType = resourceType
            self.resourceID = resourceID
        }
    }

    /// Why a client message was refused; `message` is what the client is told.
    public enum ParseError: Error, Sendable, Equatable {
        case invalidFormat
        case unknownType
        case invalidSubscription(String)

        public var message: String {
            switch self {
            case .invalidFormat: "Invalid message format"
            case .unknownType: "Unknown message type"
            case .invalidSubscription(let detail): "Invalid subscription request: \(detail)"
            }
        }
    }

    public init(parsing bytes: UnsafeBufferPointer<UInt8>) throws(ParseError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            throw .invalidFormat
        }
        try self.init(value)
    }

    public init(_ value: JSONValue) throws(ParseError) {
        guard let object = value.objectValue, let type = object["type"]?.stringValue else {
            throw .invalidFormat
        }
        switch MessageType(rawValue: type) {
        case .ping:
            self = .ping(id: object["id"]?.stringValue)
        case .pong:
            self = .pong
        case .systemStatus:
            guard let data = object["data"], !data.isNull else {
                self = .statusRequest
                return
            }
            guard let dataObject = data.objectValue else { throw .invalidFormat }
            guard let action = dataObject["action"] else {
                self = .statusRequest
                return
            }
            switch action.stringValue {
            case "subscribe": self = .subscribe(try Self.subscription(dataObject))
            case "unsubscribe": self = .unsubscribe(try Self.subscription(dataObject))
            default: throw .invalidSubscription("unknown action; use \"subscribe\" or \"unsubscribe\"")
            }
        default:
            throw .unknownType
        }
    }

    private static func subscription(_ data: JSONObject) throws(ParseError) -> SubscriptionRequest {
        guard let typeName = data["resourceType"]?.stringValue else {
            throw .invalidSubscription("resourceType must be a string")
        }
        guard let resourceType = ResourceType(rawValue: typeName) else {
            let known = ResourceType.allCases.map(\.rawValue).joined(separator: ", ")
            throw .invalidSubscription("unknown resourceType \"\(typeName)\" (one of \(known))")
        }
        let resourceID: String?
        switch data["resourceId"] {
        case .none, .some(.null):
            resourceID = nil
        case .some(.string(let id)) where !id.isEmpty:
            resourceID = id
        default:
            throw .invalidSubscription("resourceId must be a non-empty string")
        }
        if resourceID == nil, resourceType != .user, resourceType != .system {
            throw .invalidSubscription("resourceId is required for \(typeName)")
        }
        let request = SubscriptionRequest(resourceType: resourceType, resourceID: resourceID)
        if let problem = request.resourceIDProblem { throw .invalidSubscription(problem) }
        return request
    }
}
