import NIOCore
import Synchronization

/// Cluster statistics cost Redis 2 + N commands to collect, and anyone may ask for them
/// (`/api/v1/stats` has no token; every client may send a status request). This keeps one
/// snapshot and refreshes it at most once per `maxAgeSeconds`; callers that ask while a
/// refresh is running wait for that refresh instead of starting their own.
package final class StatisticsCache: Sendable {
    private struct State {
        var snapshot: StatisticsSnapshot?
        var takenAtNanos: UInt64 = 0
        var refresh: Task<StatisticsSnapshot, Never>?
    }

    private let maxAgeNanos: UInt64
    private let collect: @Sendable () async -> StatisticsSnapshot
    private let state = Mutex(State())
    private let nowNanos: @Sendable () -> UInt64

    package init(
        maxAgeSeconds: Double,
        nowNanos: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds },
        collect: @escaping @Sendable () async -> StatisticsSnapshot
    ) {
        self.maxAgeNanos = UInt64(max(0, maxAgeSeconds) * 1e9)
        self.nowNanos = nowNanos
        self.collect = collect
    }

    package func current() async -> StatisticsSnapshot {
        let now = nowNanos()
        let fresh: StatisticsSnapshot?
        let task: Task<StatisticsSnapshot, Never>?
        (fresh, task) = state.withLock { state in
            if let snapshot = state.snapshot, now &- state.takenAtNanos < maxAgeNanos {
                return (snapshot, nil)
            }
            if let refresh = state.refresh { return (nil, refresh) }
            let collect = self.collect
            // Unstructured on purpose: the refresh is shared by every caller that arrives
            // while it runs, so no single caller's cancellation may end it.
            let refresh = Task { await collect() }
            state.refresh = refresh
            return (nil, refresh)
        }
        if let fresh { return fresh }
        guard let task else { return await collect() }
        let snapshot = await task.value
        state.withLock { state in
            if state.refresh == task {
                state.refresh = nil
                state.snapshot = snapshot
                state.takenAtNanos = nowNanos()
            }
        }
        return snapshot
    }
}
