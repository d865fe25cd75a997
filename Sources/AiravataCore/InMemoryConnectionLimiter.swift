import AiravataProtocol
import Synchronization

/// Limits for a single node: three counters behind one lock, checked and taken together.
package final class InMemoryConnectionLimiter: ConnectionLimiter {
    private struct State {
        /// Keyed by bytes: two spellings of a name are two users, as everywhere else.
        var perUser: [ExactString: Int] = [:]
        var perIP: [String: Int] = [:]
        var total = 0
        var admitted: Set<UInt64> = []
    }

    private let limits: ConnectionLimits
    private let state = Mutex(State())

    package init(limits: ConnectionLimits) {
        self.limits = limits
    }

    package func admit(_ lease: ConnectionLease) async -> Result<Void, ConnectionLimitExceeded> {
        let user = ExactString(lease.userID)
        return state.withLock { state in
            if state.total >= limits.effectiveGlobal { return .failure(.global(limit: limits.global)) }
            if state.perUser[user, default: 0] >= limits.perUser {
                return .failure(.perUser(limit: limits.perUser))
            }
            if state.perIP[lease.ip, default: 0] >= limits.perIP { return .failure(.perIP(limit: limits.perIP)) }
            state.total += 1
            state.perUser[user, default: 0] += 1
            state.perIP[lease.ip, default: 0] += 1
            state.admitted.insert(lease.id)
            return .success(())
        }
    }

    package func release(_ lease: ConnectionLease) async {
        let user = ExactString(lease.userID)
        state.withLock { state in
            guard state.admitted.remove(lease.id) != nil else { return }
            state.total -= 1
            state.perUser[user, default: 1] -= 1
            if state.perUser[user] == 0 { state.perUser[user] = nil }
            state.perIP[lease.ip, default: 1] -= 1
            if state.perIP[lease.ip] == 0 { state.perIP[lease.ip] = nil }
        }
    }
}
