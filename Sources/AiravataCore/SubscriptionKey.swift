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

    package var description: String {
        resource == .system ? "system" : "\(resource.rawValue):\(id)"
    }
}
