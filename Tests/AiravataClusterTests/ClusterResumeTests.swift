import AiravataProtocol
import AiravataTestSupport
import Testing

/// Resume across node processes that share Redis: sessions and the replay log live there.
@Suite("Cluster: sessions and resume across nodes", .serialized)
struct ClusterResumeTests {
    static func open(_ cluster: ClusterHarness, _ index: Int, _ path: String, user: String, query: String = "")
        async throws -> (RawWebSocket, JSONValue)
    {
        let token = try await cluster.token(user, projects: ["proj-1"])
        let socket = try await RawWebSocket.connect(
            port: cluster.node(index).port, path: "\(path)?token=\(token)\(query)")
        return (socket, try await socket.nextMessage())
    }

    @Test("a node started after the client left replays the gap from the Redis log, subscriptions included")
    func resumeOnANewNode() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            try await cluster.publish(0, ClusterEvents.experiment(id: "exp-1", project: "proj-1", owner: "alice"))
            let (first, connected) = try await Self.open(cluster, 0, "/ws", user: "alice")
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            try await first.send(
                .object([
                    "type": .string("system_status"),
                    "data": .object([
                        "action": .string("subscribe"), "resourceType": .string("experiment"),
                        "resourceId": .string("exp-1"),
                    ]),
                ]))
            _ = try await first.nextMessage(ofType: "system_status")
            let cursor = try #require(connected["cursor"]?.stringValue)
            first.close()
            try await cluster.publish(
                0, .array((1...5).map { ClusterEvents.progress(experiment: "exp-1", sequence: $0) }))

            // A node that has routed none of those events: only the log can answer.
            let fresh = try cluster.launch(name: "late")
            guard await eventually(within: .seconds(20), { await cluster.isReady(fresh) }) else {
                throw TestSupportError("the new node did not become ready")
            }
            let (second, again) = try await Self.open(
                cluster, fresh, "/ws", user: "alice", query: "&session=\(session)&cursor=\(cursor)")
            defer { second.close() }
            #expect(again["data"]?["resumed"] == .bool(true))
            #expect(again["data"]?["nodeId"]?.stringValue == "late")
            var sequence: [String] = []
            while true {
                let message = try await second.nextMessage()
                if message["data"]?["action"]?.stringValue == "replay_complete" { break }
                if case .number(let text)? = message["data"]?["completedTasks"] { sequence.append(text) }
            }
            #expect(sequence == ["1", "2", "3", "4", "5"])
            // The restored subscription is live on the new node.
            try await cluster.publish(0, ClusterEvents.progress(experiment: "exp-1", sequence: 6))
            let live = try await second.nextMessage(ofType: "experiment_progress")
            #expect(live["data"]?["completedTasks"] == .number("6"))
        }
    }

    @Test("another user cannot resume a session on any node")
    func anotherUserAcrossNodes() async throws {
        try await ClusterHarness.with(nodes: 2) { cluster in
            let (first, connected) = try await Self.open(cluster, 0, "/ws/user", user: "alice")
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            first.close()
            let (intruder, reply) = try await Self.open(
                cluster, 1, "/ws", user: "mallory", query: "&session=\(session)&cursor=1-0")
            defer { intruder.close() }
            #expect(reply["error"]?.stringValue == "Session belongs to another user")
            #expect(try await intruder.expectClose().code == 1008)
        }
    }
}
