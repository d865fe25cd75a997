import AiravataCore
import Testing

/// `system_status`, `/api/v1/stats` and the dashboard report the last minute, not the
/// lifetime: after a bad minute ends, the figures recover within a minute.
@Suite("Recent statistics windows")
struct RecentStatisticsTests {
    static let second: Int64 = 1_000_000

    @Test("a latency spike leaves the average a minute later; the lifetime histogram keeps it")
    func spikeLeavesTheWindow() {
        let statistics = GatewayStatistics(nodeID: "n", nowMicros: 0)
        for _ in 0..<100 { statistics.eventRouted(latencyMicros: 2 * Self.second, recipients: 1) }
        let during = statistics.snapshot(nowMicros: 1 * Self.second)
        #expect(during.averageLatencySeconds == 2)
        #expect(during.recentLatency.quantileSeconds(0.99) > 1)
        // Reports once in a while, as the node's report loop makes them (every second in practice).
        for at: Int64 in [30, 61, 92] { _ = statistics.report(nowMicros: at * Self.second) }
        for _ in 0..<10 { statistics.eventRouted(latencyMicros: 1000, recipients: 1) }
        let after = statistics.snapshot(nowMicros: 122 * Self.second)
        #expect(after.averageLatencySeconds == 0.001, "the lifetime mean would be about 1.8 s")
        #expect(after.recentLatency.total == 10)
        #expect(after.recentLatency.quantileSeconds(0.99) <= 0.001)
        #expect(after.recentSeconds >= 60 && after.recentSeconds <= 62)
        #expect(statistics.latency.total == 110)
    }

    @Test("events without recipients are routed but have no delivery latency")
    func routedWithoutRecipients() {
        let statistics = GatewayStatistics(nodeID: "n", nowMicros: 0)
        statistics.eventRouted(latencyMicros: 5 * Self.second, recipients: 0)
        statistics.eventRouted(latencyMicros: 300, recipients: 2)
        #expect(statistics.routed == 2)
        #expect(statistics.delivered == 2)
        #expect(statistics.latency.total == 1)
    }

    @Test("the delivery rate is the last second's, not the lifetime's")
    func deliveryRate() {
        let statistics = GatewayStatistics(nodeID: "n", nowMicros: 0)
        for _ in 0..<1000 { statistics.eventRouted(latencyMicros: 100, recipients: 1) }
        _ = statistics.report(nowMicros: 10 * Self.second)
        for _ in 0..<5 { statistics.eventRouted(latencyMicros: 100, recipients: 1) }
        let report = statistics.report(nowMicros: 11 * Self.second)
        #expect(report.deliveryRate == 5)
    }

    @Test("histogram percentiles interpolate within a bucket and survive a round trip through text")
    func histogram() throws {
        var histogram = LatencyHistogram()
        for _ in 0..<50 { histogram.record(micros: 200) }  // ≤ 250 µs
        for _ in 0..<50 { histogram.record(micros: 40_000) }  // 25–50 ms
        #expect(histogram.quantileSeconds(0.5) == 0.00025)
        #expect(histogram.quantileSeconds(0.99) > 0.025 && histogram.quantileSeconds(0.99) <= 0.05)
        let decoded = try #require(LatencyHistogram(encoded: histogram.encoded))
        #expect(decoded == histogram)
        #expect(LatencyHistogram(encoded: "1,2;3") == nil)
        #expect(LatencyHistogram(encoded: String(repeating: "9", count: 500)) == nil)
        let negative = Array(repeating: "0", count: 15) + ["-1"]
        #expect(LatencyHistogram(encoded: negative.joined(separator: ",") + ";0") == nil)
        let huge = Array(repeating: "0", count: 15) + [String(Int.max)]
        #expect(LatencyHistogram(encoded: huge.joined(separator: ",") + ";0") == nil)
    }
}
