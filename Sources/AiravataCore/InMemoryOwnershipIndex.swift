import AiravataProtocol
package import NIOCore
import Synchronization

/// The single-node ownership index: bounded, oldest entries evicted first.
package final class InMemoryOwnershipIndex: OwnershipIndex {
    private struct State {
        /// Keyed by bytes, like every identity (`ExactString`).
        var entries: [ExactString: ExperimentOwnership] = [:]
        var order: [ExactString] = []
        var head = 0
    }

    private let state = Mutex(State())
    private let capacity: Int

    package init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    package func record(experimentID: String, ownership: ExperimentOwnership) async {
        recordNow(experimentID: experimentID, ownership: ownership)
    }

    package func lookup(experimentIDs: [String]) async -> [String: ExperimentOwnership] {
        lookUpNow(experimentIDs)
    }

    /// In memory: answered at once.
    package func record(
        _ entries: [(experimentID: String, ownership: ExperimentOwnership)],
        thenLookUp experimentIDs: [String],
        on loop: any EventLoop
    ) -> EventLoopFuture<[String: ExperimentOwnership]> {
        for entry in entries { recordNow(experimentID: entry.experimentID, ownership: entry.ownership) }
        return loop.makeSucceededFuture(lookUpNow(experimentIDs))
    }

    private func recordNow(experimentID: String, ownership: ExperimentOwnership) {
        let key = ExactString(experimentID)
        state.withLock { state in
            if state.entries.updateValue(ownership, forKey: key) == nil {
                state.order.append(key)
            }
            while state.entries.count > capacity, state.head < state.order.count {
                state.entries[state.order[state.head]] = nil
                state.head += 1
            }
            if state.head > capacity {
                state.order.removeFirst(state.head)
                state.head = 0
            }
        }
    }

    private func lookUpNow(_ experimentIDs: [String]) -> [String: ExperimentOwnership] {
        state.withLock { state in
            var found: [String: ExperimentOwnership] = [:]
            for id in experimentIDs {
                if let ownership = state.entries[ExactString(id)] { found[id] = ownership }
            }
            return found
        }
    }
}
