import Synchronization

/// Limits for a single node: three counters behind one lock, checked and taken together.
package final class InMemoryConnectionLimiter: ConnectionLimiter {
    private struct State {
        var perUser: [String: Int] = [:]
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
        state.withLock { state in
            if state.total >= limits.global { return .failure(.global(limit: limits.global)) }
            if state.perUser[lease.userID, default: 0] >= limits.perUser {
                return .failure(.perUser(limit: limits.perUser))
            }
            if state.perIP[lease.ip, default: 0] >= limits.perIP { return .failure(.perIP(limit: limits.perIP)) }
            state.total += 1
            state.perUser[lease.userID, default: 0] += 1
            state.perIP[lease.ip, default: 0] += 1
            state.admitted.insert(lease.id)
            return .success(())
        }
    }

    package func release(_ lease: ConnectionLease) async {
        state.withLock { state in
            guard state.admitted.remove(lease.id) != nil else { return }
            state.total -= 1
            state.perUser[lease.userID, default: 1] -= 1
            if state.perUser[lease.userID] == 0 { state.perUser[lease.userID] = nil }
            state.perIP[lease.ip, default: 1] -= 1
            if state.perIP[lease.ip] == 0 { state.perIP[lease.ip] = nil }
        }
    }
}
