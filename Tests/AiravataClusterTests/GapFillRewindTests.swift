import AiravataCluster
import AiravataCore
import AiravataTestSupport
import Synchronization
import Testing

/// A rewound replay log seen by the gap fill, when v3 blocks make one entry hold many cursors.
@Suite("Cluster: gap fill after a rewound log", .serialized)
struct GapFillRewindTests {
    @Test(
        "a block that covers the node's last cursor but is not the entry it came in is a rewind: the floor rises, the rest is delivered"
    )
    func coveredByAnotherBlock() async throws {
        try await GapFillBoundTests.withBus(format: .v3) { bus, redis, received in
            let resets = Mutex(0)
            bus.onLogReset { resets.withLock { $0 += 1 } }
            #expect(await eventually(within: .seconds(10)) { bus.health().ready }, "the bus never became ready")
            let cursors = try await bus.publish((0..<6).map(GapFillBoundTests.event)).compactMap { EventCursor($0) }
            try #require(cursors.count == 6)
            #expect(await eventually(within: .seconds(10)) { received.cursors.withLock { $0.count == 6 } })

            // An outage with nothing lost: the same block still holds the node's cursor.
            try #require(try await GapFillBoundTests.resubscribe(redis), "the subscriber never came back")
            #expect(await eventually(within: .seconds(10)) { bus.health().gapFills == 1 }, "no gap fill ran")
            #expect(resets.withLock { $0 } == 0, "a log that still holds the block was taken for a rewind")

            // A failover to a replica that never got the block, whose clock is behind the old
            // primary's: its next call appends a block of ten just above the replica's last
            // entry, and that block covers the node's cursor (the sixth of the lost block).
            let first = cursors[0]
            func id(_ step: UInt64) -> String { "\(first.milliseconds)-\(first.sequence + step)" }
            try await redis.cli("XDEL", "airavata:events", id(0))
            try await redis.cli("XSETID", "airavata:events", id(0))
            let payloads = (100..<110).map { EventWireFormat.encodeV2(GapFillBoundTests.event($0)) }
            let body = String(decoding: BusMessage.blockBody(payloads), as: UTF8.self)
            try await redis.cli("XADD", "airavata:events", id(1), "n", "10", "b", body)
            try await redis.cli("XSETID", "airavata:events", id(10))

            try #require(try await GapFillBoundTests.resubscribe(redis), "the subscriber never came back")
            #expect(await eventually(within: .seconds(10)) { bus.health().gapFills == 2 }, "no gap fill ran")
            #expect(
                await eventually(within: .seconds(10)) { resets.withLock { $0 } == 1 },
                "the rewound log was not noticed: its block covers the node's cursor, but it is not the block the node read"
            )
            let floor = try await redis.cli("GET", "airavata:events:floor")
            #expect(floor == cursors[5].description, "the floor is \(floor), not the node's last cursor")
            // The new block's events above the node's cursor are still delivered, in order.
            #expect(await eventually(within: .seconds(10)) { received.cursors.withLock { $0.count == 11 } })
            let delivered = received.cursors.withLock { $0 }
            #expect(delivered.suffix(5).map(\.description) == (6...10).map(id), "delivered \(delivered)")
        }
    }
}
