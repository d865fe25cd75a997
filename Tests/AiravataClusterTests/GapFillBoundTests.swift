import AiravataCluster
import AiravataCore
import AiravataProtocol
import AiravataRedis
import AiravataTestSupport
import Logging
import Synchronization
import Testing

/// The bus of one node against a real redis-server, without a gateway around it, to watch
/// its gap fill from the inside.
@Suite("Cluster: gap fill bounds", .serialized)
struct GapFillBoundTests {
    final class Received: Sendable {
        let cursors = Mutex<[EventCursor]>([])
    }

    static func event(_ index: Int) -> GatewayEvent {
        GatewayEvent(
            type: .systemStatus,
            id: "ev-\(index)",
            timestamp: "2024-01-01T00:00:00Z",
            data: .object(["notice": .integer(index)]),
            routing: EventRouting(category: .control),
            acceptedAtMicros: 1
        )
    }

    @Test("live messages held while gap fills keep failing stay bounded, and none is lost once the log answers")
    func heldIsBounded() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        var configuration = ClusterConfiguration(redis: try RedisConfiguration(url: redis.url))
        configuration.heartbeatSeconds = 0.2
        var logger = Logger(label: "gap-fill-test")
        logger.logLevel = .critical
        let client = RedisClient(configuration: configuration.redis, logger: logger)
        let bus = RedisEventBus(client: client, configuration: configuration, instance: "t-1", logger: logger)
        let received = Received()

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            group.addTask {
                try await bus.run { delivered in
                    if let cursor = delivered.cursor { received.cursors.withLock { $0.append(cursor) } }
                }
            }
            defer { group.cancelAll() }
            try await Self.exercise(bus, redis, received)
        }
    }

    /// Breaks gap fills, floods the bus past the bound, then lets the log answer.
    static func exercise(_ bus: RedisEventBus, _ redis: RedisServerProcess, _ received: Received) async throws {
        #expect(await eventually(within: .seconds(10)) { bus.health().ready }, "the bus never became ready")
        // One delivered event gives the bus a position to fill from.
        _ = try await bus.publish([Self.event(0)])
        var published = 1
        #expect(await eventually(within: .seconds(10)) { received.cursors.withLock { !$0.isEmpty } })

        // Gap fills fail (their XRANGE is refused) while pub/sub keeps delivering.
        try await redis.cli("ACL", "SETUSER", "default", "-xrange")
        try await redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
        let holding = await eventually(within: .seconds(10)) {
            guard (try? await bus.publish([Self.event(published)])) != nil else { return false }
            published += 1
            return bus.health().heldMessages > 0
        }
        try #require(holding, "the bus never started holding live messages behind a failing gap fill")

        let flood = RedisEventBus.maxHeldMessages + 1_000
        for start in stride(from: 0, to: flood, by: 1_000) {
            _ = try await bus.publish((start..<start + 1_000).map { Self.event(published + $0) })
        }
        published += flood
        // A heartbeat published after the flood arrives after it on the same connection.
        let clock = ContinuousClock()
        let floodEnd = clock.now
        let heardSince = await eventually(within: .seconds(10)) {
            guard let age = bus.health().heartbeatAgeSeconds else { return false }
            return age < (clock.now - floodEnd) / .seconds(1)
        }
        try #require(heardSince, "no heartbeat after the flood")
        let held = bus.health().heldMessages
        #expect(
            held <= RedisEventBus.maxHeldMessages,
            "held \(held) messages; the bound is \(RedisEventBus.maxHeldMessages)")

        try await redis.cli("ACL", "SETUSER", "default", "+xrange")
        let total = published
        let all = await eventually(within: .seconds(15)) { received.cursors.withLock { $0.count } >= total }
        let cursors = received.cursors.withLock { $0 }
        #expect(all, "delivered \(cursors.count) of \(total) events once the log answered")
        #expect(zip(cursors, cursors.dropFirst()).allSatisfy { $0 < $1 }, "events out of order or duplicated")
        #expect(bus.health().heldMessages == 0)
    }
}
