import AiravataCore
import Testing

@Suite("Limits, rate limiting, heartbeat and statistics arithmetic")
struct LimitsAndTimersTests {
    @Test("the in-memory limiter counts per user, per IP and in total, and releases")
    func limiter() async {
        let limiter = InMemoryConnectionLimiter(limits: ConnectionLimits(perUser: 2, perIP: 3, global: 4))
        func lease(_ id: UInt64, _ user: String, _ ip: String) -> ConnectionLease {
            ConnectionLease(id: id, userID: user, ip: ip)
        }
        func admit(_ lease: ConnectionLease) async -> ConnectionLimitExceeded? {
            if case .failure(let exceeded) = await limiter.admit(lease) { return exceeded }
            return nil
        }
        #expect(await admit(lease(1, "a", "ip1")) == nil)
        #expect(await admit(lease(2, "a", "ip1")) == nil)
        #expect(await admit(lease(3, "a", "ip2")) == .perUser(limit: 2))
        #expect(await admit(lease(4, "b", "ip1")) == nil)
        #expect(await admit(lease(5, "c", "ip1")) == .perIP(limit: 3))
        #expect(await admit(lease(6, "c", "ip2")) == nil)
        #expect(await admit(lease(7, "d", "ip3")) == .global(limit: 4))
        await limiter.release(lease(1, "a", "ip1"))
        await limiter.release(lease(1, "a", "ip1"))  // twice: counted once
        #expect(await admit(lease(8, "a", "ip3")) == nil)
        #expect(await admit(lease(9, "e", "ip3")) == .global(limit: 4))
    }

    @Test("the token bucket allows a burst, then the rate")
    func rateLimiter() {
        var limiter = RateLimiter(ratePerSecond: 10, burst: 5, nowNanos: 0)
        let burst = (0..<6).map { _ in limiter.allow(nowNanos: 0) }
        #expect(burst == [true, true, true, true, true, false])
        let refilled = [limiter.allow(nowNanos: 100_000_000), limiter.allow(nowNanos: 100_000_000)]
        #expect(refilled == [true, false])
        var unlimited = RateLimiter(ratePerSecond: 0, nowNanos: 0)
        let all = (0..<1000).map { _ in unlimited.allow(nowNanos: 0) }
        #expect(all.allSatisfy { $0 })
    }

    @Test("the heartbeat gives up after two silent intervals")
    func heartbeat() {
        var heartbeat = Heartbeat(intervalNanos: 1000, nowNanos: 0)
        #expect(heartbeat.tick(nowNanos: 500) == .none)
        #expect(heartbeat.tick(nowNanos: 1000) == .sendPing)
        #expect(heartbeat.tick(nowNanos: 1250) == .none, "one ping per interval, however often it is ticked")
        #expect(heartbeat.tick(nowNanos: 2000) == .close)
        var answered = Heartbeat(intervalNanos: 1000, nowNanos: 0)
        #expect(answered.tick(nowNanos: 1000) == .sendPing)
        answered.sawLife(nowNanos: 1500)
        #expect(answered.tick(nowNanos: 2000) == .sendPing)
        #expect(answered.tick(nowNanos: 2500) == .none)
        #expect(answered.tick(nowNanos: 3000) == .sendPing)
        #expect(answered.tick(nowNanos: 3499) == .none)
        #expect(answered.tick(nowNanos: 3500) == .close)
    }

    @Test("statistics strings use the protocol's formats")
    func formats() {
        #expect(StatisticsSnapshot.formatUptime(9015) == "2h 30m 15s")
        #expect(StatisticsSnapshot.formatUptime(45) == "45s")
        #expect(StatisticsSnapshot.formatUptime(90_061) == "1d 1h 1m 1s")
        #expect(StatisticsSnapshot.formatLatency(0.05) == "0.05s")
        #expect(StatisticsSnapshot.formatLatency(0.000193) == "0.000193s")
        #expect(StatisticsSnapshot.formatLatency(0) == "0s")
        #expect(StatisticsSnapshot.formatLatency(2) == "2.0s")
    }

    @Test("statistics count connections and events")
    func statistics() {
        let statistics = GatewayStatistics(nodeID: "n", nowMicros: 0)
        statistics.connectionOpened()
        statistics.connectionOpened()
        statistics.connectionClosed()
        statistics.eventRouted(latencyMicros: 1000, recipients: 3)
        statistics.eventRouted(latencyMicros: 3000, recipients: 1)
        statistics.eventsAccepted(2)
        let snapshot = statistics.snapshot(nowMicros: 2_000_000)
        #expect(snapshot.totalConnections == 2)
        #expect(snapshot.activeConnections == 1)
        #expect(snapshot.totalMessages == 2)
        #expect(snapshot.deliveries == 4)
        #expect(snapshot.messagesPerSecond == 1)
        #expect(snapshot.averageLatencySeconds == 0.002)
        #expect(snapshot.uptimeSeconds == 2)
    }

    @Test("cluster statistics sum the nodes' reports")
    func aggregate() {
        func report(_ node: String, started: Int64, active: Int, accepted: Int, rate: Double, latency: [Int64])
            -> NodeReport
        {
            var report = NodeReport(
                nodeID: node, startedAtMicros: started, activeConnections: active, totalConnections: active + 1,
                eventsAccepted: accepted, acceptRate: rate, deliveries: accepted * 2
            )
            for micros in latency { report.recentLatency.record(micros: micros) }
            return report
        }
        let snapshot = StatisticsSnapshot.aggregate(
            [
                report("b", started: 5_000_000, active: 3, accepted: 10, rate: 1.5, latency: [1000, 1000, 1000]),
                report("a", started: 1_000_000, active: 2, accepted: 5, rate: 0.5, latency: [1000]),
            ],
            nodeID: "a",
            nowMicros: 11_000_000
        )
        #expect(snapshot.activeConnections == 5)
        #expect(snapshot.totalConnections == 7)
        #expect(snapshot.totalMessages == 15)
        #expect(snapshot.messagesPerSecond == 2)
        #expect(snapshot.deliveries == 30)
        #expect(snapshot.averageLatencySeconds == 0.001)
        #expect(snapshot.uptimeSeconds == 10)
        #expect(snapshot.nodes.map(\.nodeID) == ["a", "b"])
    }
}
