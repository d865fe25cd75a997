import AiravataCore
import Synchronization
import Testing

@Suite("Statistics snapshot: collected at most once per interval")
struct StatisticsCacheTests {
    /// Counts collections; each returns a snapshot numbered by its collection.
    final class Source: Sendable {
        let collections = Mutex(0)
        let now = Mutex<UInt64>(0)

        func collect() async -> StatisticsSnapshot {
            let count = collections.withLock { count in
                count += 1
                return count
            }
            // Give concurrent callers time to pile up on the refresh in flight.
            await Task.yield()
            return StatisticsSnapshot(
                totalConnections: count, activeConnections: 0, totalMessages: 0, messagesPerSecond: 0,
                averageLatencySeconds: 0, uptimeSeconds: 0, deliveries: 0, nodeID: "n")
        }
    }

    @Test("200 concurrent requests inside one second cost one collection; the next second costs one more")
    func collectsOncePerInterval() async {
        let source = Source()
        let cache = StatisticsCache(maxAgeSeconds: 1, nowNanos: { source.now.withLock { $0 } }) {
            await source.collect()
        }
        let answers = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<200 { group.addTask { await cache.current().totalConnections } }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(source.collections.withLock { $0 } == 1, "expected 1 collection for 200 requests")
        #expect(Set(answers) == [1], "every request answered from the one collection: \(Set(answers))")

        source.now.withLock { $0 = 999_000_000 }
        #expect(await cache.current().totalConnections == 1, "still fresh just under a second")
        source.now.withLock { $0 = 1_001_000_000 }
        #expect(await cache.current().totalConnections == 2, "refreshed once the second has passed")
        #expect(source.collections.withLock { $0 } == 2)
    }
}
