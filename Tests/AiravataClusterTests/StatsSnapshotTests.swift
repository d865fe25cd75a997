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

    @Test("200 stats requests and 80 status messages cost Redis a handful of reads, not one collection each")
    func snapshot() async throws {
        try await ClusterHarness.with(nodes: 2) { harness in
            let before = try await Self.calls("zrange", in: harness)
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<200 {
                let stats = try await harness.stats(0)
                #expect(stats["activeConnections"] != nil, "\(stats)")
            }
            // Status requests over WebSockets share the same snapshot.
            for user in ["u1", "u2", "u3", "u4"] {
                let socket = try await harness.connect(1, "/ws", user: user)
                defer { socket.close() }
                for _ in 0..<20 { try await socket.send(.object(["type": .string("system_status")])) }
                for _ in 0..<20 {
                    let status = try await socket.nextMessage(ofType: "system_status")
                    #expect(status["data"]?["activeConnections"] != nil, "\(status)")
                }
            }
            let seconds = Int((clock.now - start).components.seconds) + 1
            let reads = try await Self.calls("zrange", in: harness) - before
            // One collection (its ZRANGE of the reporting nodes) per second per node at most.
            #expect(reads <= 2 * (seconds + 1), "280 requests in ~\(seconds) s cost \(reads) collections")
        }
    }
}
