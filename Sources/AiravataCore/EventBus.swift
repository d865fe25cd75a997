/// Carries accepted events to every node that may have interested clients.
///
/// Implementations must hand events to the sink one at a time, in the order their
/// cursors were assigned: the gateway relies on it for per-connection ordering.
package protocol EventBus: Sendable {
    /// Appends the events to the replay log and publishes them, atomically and in order.
    /// Returns each event's cursor.
    func publish(_ events: [GatewayEvent]) async throws -> [String]

    /// Starts delivering to `sink`; returns when the bus stops.
    func run(sink: @escaping @Sendable (DeliveredEvent) -> Void) async throws

    func health() -> EventBusHealth
}

extension EventBus {
    /// An in-process bus is healthy while the process runs.
    package func health() -> EventBusHealth {
        EventBusHealth(ready: true)
    }
}

/// The bus cannot take events now (for example, Redis is unreachable).
package struct EventBusUnavailableError: Error, Sendable, CustomStringConvertible {
    package var description: String

    package init(_ description: String) {
        self.description = description
    }
}
