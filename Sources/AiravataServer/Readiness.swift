import Synchronization

/// What `/readyz` reports.
package final class Readiness: Sendable {
    package enum State: UInt8, Sendable {
        case starting
        case ready
        case draining

        /// As `/readyz` and the dashboard say it.
        package var name: String {
            switch self {
            case .starting: "starting"
            case .ready: "ready"
            case .draining: "draining"
            }
        }
    }

    private let state = Atomic<UInt8>(State.starting.rawValue)

    package init() {}

    package var current: State { State(rawValue: state.load(ordering: .relaxed)) ?? .starting }

    package func set(_ newState: State) {
        state.store(newState.rawValue, ordering: .relaxed)
    }
}
