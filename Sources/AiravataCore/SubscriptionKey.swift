package import AiravataProtocol

/// One thing a connection listens to: `experiment:exp-1`, `user:alice`, `system`.
package struct SubscriptionKey: Sendable, Hashable, CustomStringConvertible {
    package var resource: ResourceType
    package var id: String

    package init(_ resource: ResourceType, _ id: String) {
        self.resource = resource
        self.id = id
    }

    package static let system = SubscriptionKey(.system, "")

    /// By bytes, like every identity (`ExactString`): `user:café` in NFC and in NFD are two keys.
    package static func == (lhs: SubscriptionKey, rhs: SubscriptionKey) -> Bool {
        lhs.resource == rhs.resource && lhs.id.hasSameBytes(as: rhs.id)
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(resource)
        hasher.combine(ExactString(id))
    }

    package var description: String {
        resource == .system ? "system" : "\(resource.rawValue):\(id)"
    }
}

extension SubscriptionKey {
    /// The request that asks for this key, for re-checking a stored subscription.
    package var request: ClientMessage.SubscriptionRequest {
        .init(resourceType: resource, resourceID: resource == .system ? nil : id)
    }

    /// As the subscription replies write it: `resourceType` and, but for `system`, `resourceId`.
    package var json: JSONObject {
        var object: JSONObject = ["resourceType": .string(resource.rawValue)]
        if resource != .system { object["resourceId"] = .string(id) }
        return object
    }
}
