import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// `/api/v1/stats` needs no token: it must not turn each request into Redis reads.
@Suite("Cluster statistics come from a snapshot", .serialized)
struct StatsSnapshotTests {
    /// Calls of one command so far, from Redis's own statistics.
    static func calls(_ command: String, in harness: ClusterHarness) async throws -> Int {
        let info = try await harness.redis.cli("INFO", "commandstats")
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
            let calls = line.split(separator: ",").first?.split(separator: "=").last, let count = Int(calls)
        else { return 0 }
        return count
    }

    @Test("200 stats requests cost Redis a handful of reads, not 200 × (2 + nodes)")
    func snapshot() async throws {
        try await ClusterHarness.with(nodes: 2) { harness in
            let before = try await Self.calls("hgetall", in: harness)
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<200 {
                let stats = try await harness.stats(0)
                #expect(stats["activeConnections"] != nil, "\(stats)")
            }
            let seconds = Int((clock.now - start).components.seconds) + 1
            let reads = try await Self.calls("hgetall", in: harness) - before
            // One refresh per second at most, each reading every node's hash.
            #expect(reads <= 2 * (seconds + 1), "200 requests in ~\(seconds) s cost \(reads) HGETALL")
        }
    }
}
