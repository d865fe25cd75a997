package import AiravataCore
import AiravataRedis
package import Logging
package import NIOCore
import NIOPosix
import ServiceLifecycle

/// One gateway node's membership of the cluster: the Redis connections, the node lease
/// that makes its connection counts count, and the Redis-backed implementations of the
/// core's interfaces.
package final class ClusterNode: Service {
    package let configuration: ClusterConfiguration
    /// Unique per process start, so a restarted node never inherits a dead one's counts.
    package let instance: String
    package let bus: RedisEventBus
    package let limiter: RedisConnectionLimiter
    package let ownership: RedisOwnershipIndex
    package let statistics: RedisStatisticsStore
    private let client: RedisClient
    /// With durable ingestion, the publish scripts' own connection (`WAIT` holds the one it
    /// is sent on, and must not hold up admissions and sessions).
    private let publisher: RedisClient?
    private let keys: RedisKeys
    private let logger: Logger

    /// - Parameter eventLoops: the loops the Redis connections run on: the server's, so that
    ///   replies and events reach the clients' loops without crossing to threads of their own.
    package init(
        configuration: ClusterConfiguration, nodeID: String, limits: ConnectionLimits,
        eventLoops: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) {
        self.configuration = configuration
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        let instance = "\(nodeID)-\(suffix)"
        self.instance = instance
        self.logger = logger
        let keys = RedisKeys(prefix: configuration.keyPrefix)
        self.keys = keys
        let leaseMillis = Int(configuration.nodeLeaseSeconds * 1000)
        let holder = LimiterHolder()
        let client = RedisClient(configuration: configuration.redis, eventLoop: eventLoops.next(), logger: logger) {
            connection in
            // The lease first: counts written under an expired lease would be ignored.
            try await connection.send(
                RedisCommand(
                    "SET", RedisArgument(keys.nodeLease(instance: instance)), RedisArgument(nodeID), "PX",
                    RedisArgument(leaseMillis))
            )
            try await holder.limiter?.restore(on: connection)
        }
        self.client = client
        let publisher =
            configuration.durability.replicas > 0
            ? RedisClient(configuration: configuration.redis, eventLoop: eventLoops.next(), logger: logger) : nil
        self.publisher = publisher
        self.bus = RedisEventBus(
            client: client, publisher: publisher, configuration: configuration, instance: instance,
            subscriberLoop: eventLoops.next(), logger: logger)
        let limiter = RedisConnectionLimiter(
            client: client,
            keyPrefix: configuration.keyPrefix,
            instance: instance,
            limits: limits,
            logger: logger
        )
        holder.limiter = limiter
        self.limiter = limiter
        self.ownership = RedisOwnershipIndex(
            client: client,
            keyPrefix: configuration.keyPrefix,
            ttlSeconds: configuration.ownershipTTLSeconds
        )
        self.statistics = RedisStatisticsStore(
            client: client,
            keyPrefix: configuration.keyPrefix,
            instance: instance,
            reportSeconds: configuration.reportSeconds
        )
    }

    /// The cluster's session store, in the same Redis.
    package func sessions(ttlSeconds: Double) -> RedisSessionStore {
        RedisSessionStore(client: client, keyPrefix: configuration.keyPrefix, ttlSeconds: ttlSeconds)
    }

    /// Lets the connect hook reach the limiter, which needs the client first.
    private final class LimiterHolder: @unchecked Sendable {  // set once during init
        var limiter: RedisConnectionLimiter?
    }

    package func run() async throws {
        logger.info(
            "joining the cluster", metadata: ["redis": "\(configuration.redis.redacted)", "instance": "\(instance)"])
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            if let publisher = self.publisher { group.addTask { await publisher.run() } }
            group.addTask { await self.renewLease() }
            // Stay until the server has drained (services stop in reverse order), then leave.
            try? await gracefulShutdown()
            await leave()
            group.cancelAll()
        }
    }

    private func renewLease() async {
        let interval = configuration.nodeLeaseSeconds / 3
        let leaseMillis = Int(configuration.nodeLeaseSeconds * 1000)
        while (try? await Task.sleep(for: .milliseconds(Int64(interval * 1000)))) != nil {
            do {
                try await client.send(
                    RedisCommand(
                        "SET",
                        RedisArgument(keys.nodeLease(instance: instance)),
                        RedisArgument(instance),
                        "PX",
                        RedisArgument(leaseMillis)
                    )
                )
                await limiter.settleOwed()
            } catch {
                logger.debug("node lease renewal failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Gives back this node's counts and lease, so the cluster need not wait for expiry.
    private func leave() async {
        await limiter.withdraw()
        _ = try? await client.send(RedisCommand("DEL", RedisArgument(keys.nodeLease(instance: instance))))
        logger.info("left the cluster", metadata: ["instance": "\(instance)"])
    }
}
