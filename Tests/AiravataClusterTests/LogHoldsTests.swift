import AiravataCluster
import AiravataCore
import AiravataTestSupport
import Testing

/// Which resume cursors the replay log still holds (`RedisEventBus.logHolds`), when one v3
/// entry holds many cursors.
@Suite("Cluster: which cursors the replay log holds", .serialized)
struct LogHoldsTests {
    /// How many `XREVRANGE` calls Redis has served, from `INFO commandstats`.
    static func entryReads(_ redis: RedisServerProcess) async throws -> Int {
        let stats = try await redis.cli("INFO", "commandstats")
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_xrevrange:") }),
            let calls = line.split(separator: ",").first?.split(separator: "=").last.flatMap({ Int($0) })
        else { return 0 }
        return calls
    }

    @Test("many cursors inside a few blocks cost about one entry read per block, and the answer is exact")
    func cursorsInBlocks() async throws {
        try await GapFillBoundTests.withBus(format: .v3) { bus, redis, _ in
            #expect(await eventually(within: .seconds(10)) { bus.health().ready }, "the bus never became ready")
            var cursors: [EventCursor] = []
            for call in 0..<3 {
                let answer = try await bus.publish((0..<40).map { GapFillBoundTests.event(call * 40 + $0) })
                cursors += answer.compactMap { EventCursor($0) }
            }
            try #require(cursors.count == 120)
            let last = cursors[119]
            let strangers = [
                EventCursor(milliseconds: last.milliseconds, sequence: last.sequence + 1),  // past the log's end
                EventCursor(milliseconds: last.milliseconds + 60_000, sequence: 0),  // in the future
                EventCursor(milliseconds: 1, sequence: 0),  // before the log began
            ]

            let before = try await Self.entryReads(redis)
            let held = try await bus.logHolds((cursors + strangers).shuffled())
            let reads = try await Self.entryReads(redis) - before
            #expect(held == Set(cursors), "held \(held.count) of 120, strangers: \(held.subtracting(cursors))")
            // One read per block and per stranger at most (6); one per cursor would be 123. The
            // margin is for the bus's own reads in the same window: under load its subscriber
            // may be rebuilt, and it then reads the log's tip (seen once in a full-suite run).
            #expect(reads <= 12, "\(reads) entry reads for 123 cursors in 3 blocks")

            // A floor at the second block's last cursor: below it, no cursor is a whole resume point.
            try await redis.cli("SET", "airavata:events:floor", cursors[79].description)
            #expect(try await bus.logHolds(cursors) == Set(cursors[79...]))
        }
    }
}
