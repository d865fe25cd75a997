import AiravataClient
import AiravataProtocol
import AiravataTestSupport
import Testing

/// Three node processes sharing one redis-server: an event ingested on node 1 reaches
/// subscribers on nodes 2 and 3. A system broadcast ends each test as a sentinel, proving
/// nothing else arrived before it.
@Suite("Cluster: cross-node delivery", .serialized)
struct CrossNodeDeliveryTests {
    static func expectSentinel(_ socket: RawWebSocket, _ note: String, _ reason: String) async throws {
        let message = try await socket.nextMessage()
        #expect(message["data"]?["notice"]?.stringValue == note, "\(reason); got \(message.jsonString)")
    }

    static func expectEvent(_ socket: RawWebSocket, _ type: String) async throws {
        let message = try await socket.nextMessage()
        #expect(message["type"]?.stringValue == type, "expected \(type), got \(message.jsonString)")
    }

    @Test("every routing rule across nodes, once each, with authorization")
    func routingRules() async throws {
        try await ClusterHarness.with { cluster in
            // Subscribers on nodes 2 and 3 (indices 1, 2); the producer posts to node 1.
            let experiment = try await cluster.connect(1, "/ws/experiments/e-1", user: "viewer", projects: ["p-1"])
            let project = try await cluster.connect(2, "/ws/projects/p-1", user: "member", projects: ["p-1"])
            let owner = try await cluster.connect(1, "/ws/user", user: "u-1")
            let task = try await cluster.connect(2, "/ws/tasks/t-1", user: "viewer2", projects: ["p-1"])
            let worker = try await cluster.connect(1, "/ws/workers/w-1", user: "ops", roles: ["admin"])
            let system = try await cluster.connect(2, "/ws/system", user: "ops2", roles: ["admin"])
            let outsider = try await cluster.connect(2, "/ws/experiments/e-1", user: "mallory", projects: ["p-9"])
            let everyone = [experiment, project, owner, task, worker, system, outsider]
            defer { everyone.forEach { $0.close() } }

            try await cluster.publish(0, ClusterEvents.experiment(id: "e-1", project: "p-1", owner: "u-1"))
            // Node 1 learned e-1's project and owner; nodes 2 and 3 route the task by it.
            try await cluster.publish(0, ClusterEvents.task(id: "t-1", experiment: "e-1"))
            try await cluster.publish(0, ClusterEvents.worker(id: "w-1"))
            try await cluster.publish(0, ClusterEvents.system("end"))

            for socket in [experiment, project, owner] {
                try await Self.expectEvent(socket, "experiment_updated")
                try await Self.expectEvent(socket, "task_updated")
            }
            try await Self.expectEvent(task, "task_updated")
            try await Self.expectEvent(worker, "worker_updated")
            try await Self.expectEvent(system, "worker_updated")
            for socket in everyone {
                try await Self.expectSentinel(
                    socket, "end", "only the sentinel may follow (once each, authorized only)")
            }
        }
    }

    /// In the forms that carry the client message (v1, for nodes of before, carries the
    /// parsed value and each node writes it again).
    @Test(
        "an event's data reaches every node's subscribers as the producer wrote it, or written again when not compact",
        arguments: ["v2", "v3"])
    func dataAsWritten(format: String) async throws {
        try await ClusterHarness.with(nodes: 2, arguments: ["--bus-format", format]) { cluster in
            let sockets = [
                try await cluster.connect(0, "/ws/projects/p-1", user: "ops", roles: ["admin"]),
                try await cluster.connect(1, "/ws/projects/p-1", user: "ops2", roles: ["admin"]),
            ]
            defer { sockets.forEach { $0.close() } }
            let service = try await cluster.token("producer", roles: ["service"])
            let response = try await cluster.http(0).publish(json: DataAsWritten.body, token: service)
            #expect(response.status == 202, "\(response.bodyString)")
            for socket in sockets {
                try DataAsWritten.expect(
                    try await socket.nextText(ofType: "task_updated"), try await socket.nextText(ofType: "task_updated")
                )
            }
        }
    }

    @Test("1,000 events ingested on one node arrive in order on the others")
    func order() async throws {
        try await ClusterHarness.with { cluster in
            let second = try await cluster.connect(1, "/ws/experiments/e-1", user: "u-1")
            let third = try await cluster.connect(2, "/ws/projects/p-1", user: "m", projects: ["p-1"])
            defer { [second, third].forEach { $0.close() } }
            try await cluster.publish(
                0, ClusterEvents.experiment("experiment_created", id: "e-1", project: "p-1", owner: "u-1"))
            for batch in 0..<10 {
                try await cluster.publish(
                    0,
                    .array((0..<100).map { ClusterEvents.progress(experiment: "e-1", sequence: batch * 100 + $0) })
                )
            }
            for socket in [second, third] {
                try await Self.expectEvent(socket, "experiment_created")
                var sequence: [Int] = []
                for _ in 0..<1000 {
                    let message = try await socket.nextMessage()
                    sequence.append(Int(message["data"]?["completedTasks"]?.doubleValue ?? -1))
                }
                #expect(sequence == Array(0..<1000))
            }
        }
    }

    @Test("/api/v1/stats shows the same cluster totals on every node")
    func sharedStatistics() async throws {
        try await ClusterHarness.with { cluster in
            let a = try await cluster.connect(0, "/ws/user", user: "a")
            let b = try await cluster.connect(1, "/ws/user", user: "b")
            let c = try await cluster.connect(2, "/ws/user", user: "c")
            defer { [a, b, c].forEach { $0.close() } }
            for node in 0..<3 { try await cluster.publish(node, ClusterEvents.system("n\(node)")) }
            // Within one reporting interval (1 s) every node reports 3 connections and 3 events.
            let agreed = await eventually {
                var totals: [String] = []
                for node in 0..<3 {
                    guard let stats = try? await cluster.stats(node) else { return false }
                    let active = stats["activeConnections"]?.doubleValue ?? -1
                    let messages = stats["totalMessages"]?.doubleValue ?? -1
                    let nodes = stats["nodes"]?.arrayValue?.count ?? 0
                    totals.append("\(active)/\(messages)/\(nodes)")
                }
                return Set(totals) == ["3.0/3.0/3"]
            }
            #expect(agreed)
        }
    }
}
