import AiravataCore
import AiravataRedis
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import AiravataCluster

/// The node's Redis connections run on the loops it is given (the server's), so that a node
/// started with `--threads 1` is one event-loop thread, not one plus NIO's default group.
@Suite("Cluster: node event loops")
struct ClusterNodeLoopsTests {
    @Test("the command and subscriber connections run on the given group's loops")
    func redisOnGivenLoops() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let only = group.next()
        let configuration = ClusterConfiguration(redis: try RedisConfiguration(url: "redis://127.0.0.1:1/0"))
        let node = ClusterNode(
            configuration: configuration, nodeID: "loops-1", limits: ConnectionLimits(), eventLoops: group,
            logger: Logger(label: "cluster-node-loops-test"))
        #expect(node.bus.client.eventLoop === only)
        #expect(node.bus.subscriber.eventLoop === only)
        // Without a group the node keeps NIO's shared one, as before.
        let shared = ClusterNode(
            configuration: configuration, nodeID: "loops-2", limits: ConnectionLimits(),
            logger: Logger(label: "cluster-node-loops-test"))
        #expect(shared.bus.client.eventLoop !== only)
        try await group.shutdownGracefully()
    }
}
