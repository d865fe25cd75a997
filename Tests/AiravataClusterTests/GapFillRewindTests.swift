import AiravataCluster
import AiravataCore
import AiravataTestSupport
import Synchronization
import Testing

/// A rewound replay log seen by the gap fill, when v3 blocks make one entry hold many cursors.
@Suite("Cluster: gap fill after a rewound log", .serialized)
struct GapFillRewindTests {
    @Test(
        "a plain outage is not a rewind, in every bus format: the log still holds the entry and the event the node delivered last",
        arguments: [BusFormat.v1, .v2, .v3])
    func outageIsNoRewind(format: BusFormat) async throws {
        try await GapFillBoundTests.withBus(format: format) { bus, redis, received in
            let resets = Mutex(0)
            bus.onLogReset { _ in resets.withLock { $0 += 1 } }
            #expect(await eventually(within: .seconds(10)) { bus.health().ready }, "the bus never became ready")
            _ = try await bus.publish((0..<3).map(GapFillBoundTests.event))
            #expect(await eventually(within: .seconds(10)) { received.cursors.withLock { $0.count == 3 } })
            try #require(try await GapFillBoundTests.resubscribe(redis), "the subscriber never came back")
            #expect(await eventually(within: .seconds(10)) { bus.health().gapFills >= 1 }, "no gap fill ran")
            _ = try await bus.publish([GapFillBoundTests.event(3)])
            #expect(await eventually(within: .seconds(10)) { received.cursors.withLock { $0.count == 4 } })
            #expect(
                resets.withLock { $0 } == 0, "a log that still holds what the node delivered was taken for a rewind")
            #expect(try await redis.cli("GET", "airavata:events:floor").isEmpty, "the floor was raised")
        }
    }

    /// A failover to a replica that never got the node's last block, whose clock is not past
    /// the old primary's: its next call appends a block of ten just above the replica's last
    /// entry. With `offset` 0 that block even has the lost block's id (the replica's last id
    /// was just below it); with 1 it starts one above (its last id was moved there).
    @Test(
        "a block that covers the node's last cursor but is not what the node read there is a rewind: the floor rises, the rest is delivered",
        arguments: [UInt64(0), 1])
    func coveredByAnotherBlock(offset: UInt64) async throws {
        try await GapFillBoundTests.withBus(format: .v3) { bus, redis, received in
            let resets = Mutex(0)
            bus.onLogReset { _ in resets.withLock { $0 += 1 } }
            #expect(await eventually(within: .seconds(10)) { bus.health().ready }, "the bus never became ready")
            let cursors = try await bus.publish((0..<6).map(GapFillBoundTests.event)).compactMap { EventCursor($0) }
            try #require(cursors.count == 6)
            #expect(await eventually(within: .seconds(10)) { received.cursors.withLock { $0.count == 6 } })

            let first = cursors[0]
            func id(_ step: UInt64) -> String { "\(first.milliseconds)-\(first.sequence + step)" }
            // The replica's log: everything before the block (the epoch mark), its last id the mark's.
            try await redis.cli("XDEL", "airavata:events", id(0))
            let top = try await redis.cli("XREVRANGE", "airavata:events", "+", "-", "COUNT", "1")
            let mark = try #require(top.split(separator: "\n").first.map(String.init))
            try await redis.cli("XSETID", "airavata:events", offset == 0 ? mark : id(offset - 1))
            let payloads = (100..<110).map { EventWireFormat.encodeV2(GapFillBoundTests.event($0)) }
            let body = String(decoding: BusMessage.blockBody(payloads), as: UTF8.self)
            try await redis.cli("XADD", "airavata:events", id(offset), "n", "10", "b", body)
            try await redis.cli("XSETID", "airavata:events", id(offset + 9))

            try #require(try await GapFillBoundTests.resubscribe(redis), "the subscriber never came back")
            #expect(await eventually(within: .seconds(10)) { bus.health().gapFills >= 1 }, "no gap fill ran")
            #expect(
                await eventually(within: .seconds(10)) { resets.withLock { $0 } == 1 },
                "the rewound log was not noticed: a new block covers the node's cursor")
            let floor = try await redis.cli("GET", "airavata:events:floor")
            #expect(floor == cursors[5].description, "the floor is \(floor), not the node's last cursor")
            // The new block's events above the node's cursor are still delivered, in order.
            let expected = (6...(offset + 9)).map(id)
            #expect(
                await eventually(within: .seconds(10)) {
                    received.cursors.withLock { $0.count == 6 + expected.count }
                })
            let delivered = received.cursors.withLock { $0 }
            #expect(delivered.dropFirst(6).map(\.description) == expected, "delivered \(delivered)")
        }
    }
}
