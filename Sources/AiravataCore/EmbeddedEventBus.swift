import Synchronization

/// The in-process bus of a single node: cursors are a counter, delivery is synchronous.
package final class EmbeddedEventBus: EventBus {
    private struct State {
        var sequence: UInt64 = 0
        var sink: (@Sendable (DeliveredEvent) -> Void)?
    }

    /// One lock serialises cursor assignment and delivery, so cursor order is delivery order.
    private let state = Mutex(State())

    package init() {}

    package func publish(_ events: [GatewayEvent]) async throws -> [String] {
        state.withLock { state in
            events.map { event in
                state.sequence += 1
                let cursor = "0-\(state.sequence)"
                state.sink?(DeliveredEvent(event: event, cursor: cursor))
                return cursor
            }
        }
    }

    package func run(sink: @escaping @Sendable (DeliveredEvent) -> Void) async throws {
        state.withLock { $0.sink = sink }
        defer { state.withLock { $0.sink = nil } }
        // Nothing to run: park until cancelled (graceful shutdown).
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(3600))
        }
    }
}
