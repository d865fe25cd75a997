import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// The per-node limit is each node's capacity, so nodes add up; the cluster-wide limit caps
/// the sum exactly, however many nodes share it.
@Suite("Cluster: per-node capacity and the cluster-wide cap", .serialized)
struct ClusterCapacityTests {
    struct Storm {
        var admitted: [RawWebSocket] = []
        var refusals: [String] = []
        var admittedPerNode: [Int: Int] = [:]
    }

    /// Opens `count` connections of distinct users at once, round-robin over `nodes` nodes.
    static func storm(_ cluster: ClusterHarness, nodes: Int, count: Int) async throws -> Storm {
        try await withThrowingTaskGroup(of: (Int, RawWebSocket?, String?).self) { group in
            for index in 0..<count {
                group.addTask {
                    let node = index % nodes
                    let token = try await cluster.token("capacity-user-\(index)")
                    let socket = try await RawWebSocket.connect(
                        port: cluster.node(node).port, path: "/ws?token=\(token)")
                    let reply = try await socket.nextMessage()
                    if reply["data"]?["action"]?.stringValue == "connected" { return (node, socket, nil) }
                    let close = try await socket.expectClose()
                    socket.close()
                    #expect(close.code == 1013, "a limit refusal closes with 1013, got \(close.code)")
                    return (node, nil, reply["error"]?.stringValue ?? "no error text in \(reply.jsonString)")
                }
            }
            var storm = Storm()
            for try await (node, socket, refusal) in group {
                if let socket {
                    storm.admitted.append(socket)
                    storm.admittedPerNode[node, default: 0] += 1
                }
                if let refusal { storm.refusals.append(refusal) }
            }
            return storm
        }
    }

    @Test("with --max-connections-per-node 4, one node admits 4 of 12 and three nodes admit all 12")
    func nodesAddCapacity() async throws {
        let one = try await ClusterHarness.with(nodes: 1, arguments: ["--max-connections-per-node", "4"]) { cluster in
            let storm = try await Self.storm(cluster, nodes: 1, count: 12)
            defer { storm.admitted.forEach { $0.close() } }
            #expect(Set(storm.refusals) == ["Connection limit exceeded: this node accepts at most 4 connections"])
            return storm.admitted.count
        }
        #expect(one == 4)
        let three = try await ClusterHarness.with(nodes: 3, arguments: ["--max-connections-per-node", "4"]) {
            cluster in
            let storm = try await Self.storm(cluster, nodes: 3, count: 12)
            defer { storm.admitted.forEach { $0.close() } }
            #expect(storm.refusals.isEmpty, "refused: \(storm.refusals)")
            #expect(storm.admittedPerNode == [0: 4, 1: 4, 2: 4])
            // One more on any node is over that node's capacity.
            let extra = try await Self.storm(cluster, nodes: 1, count: 1)
            defer { extra.admitted.forEach { $0.close() } }
            #expect(extra.refusals == ["Connection limit exceeded: this node accepts at most 4 connections"])
            return storm.admitted.count
        }
        #expect(three == 12, "three nodes admitted \(three), one node \(one)")
    }

    @Test("the cluster-wide cap holds exactly while per-node room is left: 9 of 15 over three nodes")
    func clusterCapHolds() async throws {
        try await ClusterHarness.with(
            nodes: 3, arguments: ["--max-connections-per-node", "5", "--max-connections-cluster", "9"]
        ) { cluster in
            let storm = try await Self.storm(cluster, nodes: 3, count: 15)
            defer { storm.admitted.forEach { $0.close() } }
            #expect(storm.admitted.count == 9)
            #expect(
                Set(storm.refusals) == ["Connection limit exceeded: the server accepts at most 9 connections"],
                "refusals: \(Set(storm.refusals))")
            // A freed slot is taken again, on any node. One try on each node at once: the node
            // of the freed slot is unknown, and another may already hold its five (the storm
            // can admit five of the nine on one node); the cap lets exactly one of them in.
            storm.admitted.first?.close()
            #expect(
                await eventually {
                    let again = try? await Self.storm(cluster, nodes: 3, count: 3)
                    again?.admitted.forEach { $0.close() }
                    return again?.admitted.count == 1
                })
        }
    }

    @Test("the deprecated --max-connections still caps the cluster, and clashes with its new name")
    func deprecatedName() async throws {
        try await ClusterHarness.with(nodes: 2, arguments: ["--max-connections", "6"]) { cluster in
            let storm = try await Self.storm(cluster, nodes: 2, count: 10)
            defer { storm.admitted.forEach { $0.close() } }
            #expect(storm.admitted.count == 6)
        }
        let (status, output) = try await runToCompletion(
            try gatewayBinary(), ["serve", "--dev", "--max-connections", "5", "--max-connections-cluster", "7"])
        #expect(status != 0)
        #expect(output.contains("--max-connections and --max-connections-cluster set the same limit"), "\(output)")
    }
}
