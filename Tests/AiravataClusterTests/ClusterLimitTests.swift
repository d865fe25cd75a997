import AiravataProtocol
import AiravataTestSupport
import Testing

@Suite("Cluster: connection limits across nodes", .serialized)
struct ClusterLimitTests {
    enum Outcome: Sendable {
        case admitted(RawWebSocket)
        case refused(String)
    }

    /// Opens `count` connections at once, round-robin over the nodes.
    static func storm(_ cluster: ClusterHarness, count: Int, user: (Int) -> String) async throws -> [Outcome] {
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            for index in 0..<count {
                let name = user(index)
                group.addTask {
                    let token = try await cluster.token(name)
                    let socket = try await RawWebSocket.connect(
                        port: cluster.node(index % 3).port, path: "/ws?token=\(token)")
                    // An admitted connection's first message is `connected`; a refused one's, the error.
                    let reply = try await socket.nextMessage()
                    if reply["data"]?["action"]?.stringValue == "connected" { return .admitted(socket) }
                    let close = try await socket.expectClose()
                    socket.close()
                    #expect(close.code == 1013)
                    return .refused(reply["error"]?.stringValue ?? "")
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }

    static func admitted(_ outcomes: [Outcome]) -> [RawWebSocket] {
        outcomes.compactMap { if case .admitted(let socket) = $0 { socket } else { nil } }
    }

    @Test("30 concurrent connections of one user over three nodes: exactly 10 admitted")
    func perUser() async throws {
        try await ClusterHarness.with { cluster in
            let outcomes = try await Self.storm(cluster, count: 30) { _ in "alice" }
            let open = Self.admitted(outcomes)
            defer { open.forEach { $0.close() } }
            #expect(open.count == 10)
            for case .refused(let message) in outcomes {
                #expect(message == "Connection limit exceeded: at most 10 connections per user")
            }
        }
    }

    @Test("per-IP limit over three nodes")
    func perIP() async throws {
        try await ClusterHarness.with(arguments: ["--max-connections-per-ip", "12"]) { cluster in
            let outcomes = try await Self.storm(cluster, count: 24) { "user-\($0)" }
            let open = Self.admitted(outcomes)
            defer { open.forEach { $0.close() } }
            #expect(open.count == 12)
        }
    }

    @Test("global limit over three nodes")
    func global() async throws {
        try await ClusterHarness.with(arguments: ["--max-connections", "7"]) { cluster in
            let outcomes = try await Self.storm(cluster, count: 15) { "user-\($0)" }
            let open = Self.admitted(outcomes)
            defer { open.forEach { $0.close() } }
            #expect(open.count == 7)
        }
    }

    @Test("a node killed with SIGKILL stops counting once its lease expires; a clean close releases at once")
    func crashedNodeStopsCounting() async throws {
        try await ClusterHarness.with(arguments: ["--node-lease", "3"]) { cluster in
            var sockets: [RawWebSocket] = []
            for _ in 0..<10 { sockets.append(try await cluster.connect(0, "/ws", user: "bob")) }
            defer { sockets.forEach { $0.close() } }
            // The user is at the limit everywhere.
            let refused = try await Self.storm(cluster, count: 1) { _ in "bob" }
            #expect(Self.admitted(refused).isEmpty)

            // A clean close on a live node releases its count right away.
            sockets.removeLast().close()
            let reopened = await eventually(within: .seconds(5)) {
                guard let socket = try? await cluster.connect(1, "/ws", user: "bob") else { return false }
                sockets.append(socket)
                return true
            }
            #expect(reopened)

            cluster.kill9(0)
            let clock = ContinuousClock()
            let killedAt = clock.now
            // Node 1's nine connections are gone with it; within the lease bob may connect again.
            let admittedAgain = await eventually(within: .seconds(30)) {
                guard let socket = try? await cluster.connect(2, "/ws", user: "bob") else { return false }
                sockets.append(socket)
                return true
            }
            #expect(admittedAgain)
            #expect(clock.now - killedAt < .seconds(30))
        }
    }
}
