import AiravataRedis
import AiravataTestSupport
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@Suite("Redis client against a real redis-server")
struct RedisIntegrationTests {
    static var logger: Logger {
        var logger = Logger(label: "test.redis")
        logger.logLevel = .critical
        return logger
    }

    /// Collects pub/sub messages and lets a test wait for a count.
    final class Received: Sendable {
        let messages = Mutex<[String]>([])
        let resubscriptions = Atomic<Int>(0)

        func waitFor(count: Int, within seconds: Int = 10) async -> [String] {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(seconds)
            while clock.now < deadline, messages.withLock({ $0.count }) < count {
                try? await clock.sleep(for: .milliseconds(10))
            }
            return messages.withLock { $0 }
        }
    }

    @Test("commands, pipelines and error replies")
    func commands() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let connection = try await RedisConnection.connect(
            to: try RedisConfiguration(url: redis.url),
            on: MultiThreadedEventLoopGroup.singleton.next()
        )
        defer { Task { await connection.close() } }
        #expect(try await connection.send(RedisCommand("SET", "k", "v")) == .status("OK"))
        #expect(try await connection.send(RedisCommand("GET", "k")).string == "v")
        let replies = try await connection.pipeline((0..<100).map { _ in RedisCommand("INCR", "counter") })
        #expect(replies.last == .integer(100))
        await #expect(throws: RedisError.self) { try await connection.send(RedisCommand("LPUSH", "k", "x")) }
        // The connection stays usable after an error reply.
        #expect(try await connection.send(RedisCommand("EXISTS", "k")) == .integer(1))
    }

    @Test("a subscriber killed with CLIENT KILL TYPE pubsub reconnects and resubscribes by itself")
    func subscriberReconnects() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let configuration = try RedisConfiguration(url: redis.url)
        let received = Received()
        let subscriber = RedisSubscriber(
            configuration: configuration,
            logger: Self.logger,
            onMessage: { _, payload in received.messages.withLock { $0.append(String(buffer: payload)) } },
            onResubscribed: { received.resubscriptions.add(1, ordering: .relaxed) }
        )
        subscriber.subscribe("news")
        let task = Task { await subscriber.run() }
        defer { task.cancel() }
        let client = RedisClient(configuration: configuration, logger: Self.logger)
        let clientTask = Task { await client.run() }
        defer { clientTask.cancel() }

        #expect(await eventually { received.resubscriptions.load(ordering: .relaxed) == 1 })
        #expect(await eventually { client.link == .connected })
        try await client.send(RedisCommand("PUBLISH", "news", "one"))
        #expect(await received.waitFor(count: 1) == ["one"])

        try await redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
        #expect(await eventually { received.resubscriptions.load(ordering: .relaxed) == 2 })
        try await client.send(RedisCommand("PUBLISH", "news", "two"))
        #expect(await received.waitFor(count: 2) == ["one", "two"])
    }

    @Test("after Redis restarts, the client reconnects and reports the outage meanwhile")
    func clientSurvivesRestart() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let client = RedisClient(configuration: try RedisConfiguration(url: redis.url), logger: Self.logger)
        let task = Task { await client.run() }
        defer { task.cancel() }
        #expect(await eventually { client.link == .connected })
        redis.kill()
        #expect(await eventually { if case .disconnected = client.link { true } else { false } })
        await #expect(throws: RedisError.self) { try await client.send(RedisCommand("PING")) }
        try await redis.launch()
        #expect(await eventually { client.link == .connected })
        #expect(try await client.send(RedisCommand("PING")) == .status("PONG"))
    }
}
