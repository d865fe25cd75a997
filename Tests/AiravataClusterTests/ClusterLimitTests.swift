import AiravataProtocol
import AiravataTestSupport
import Testing

@Suite("Cluster: connection limits across nodes", .serialized)
struct ClusterLimitTests {
    enum Outcome: Sendable {
        case admitted(RawWebSocket)
        case refused(String)
    }

    /// Opens `count` connections at once, round-robin over `nodes`.
    static func storm(
        _ cluster: ClusterHarness, count: Int, on nodes: [Int] = [0, 1, 2], user: (Int) -> String
    ) async throws -> [Outcome] {
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            for index in 0..<count {
                let name = user(index)
                group.addTask {
                    let token = try await cluster.token(name)
                    let socket = try await RawWebSocket.connect(
                        port: cluster.node(nodes[index % nodes.count]).port, path: "/ws?token=\(token)")
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

    /// The node lease the lease test runs with, in seconds (`--node-lease`).
    static let leaseSeconds = 3
    /// How long past the lease a freed count may take to show: one failed connect attempt,
    /// the next attempt and scheduling on a busy machine. Well under the 30 s default lease.
    static let leaseSlack: Duration = .seconds(3)

    @Test("a node killed with SIGKILL stops counting once its lease expires; a clean close releases at once")
    func crashedNodeStopsCounting() async throws {
        try await ClusterHarness.with(arguments: ["--node-lease", "\(Self.leaseSeconds)"]) { cluster in
            var sockets: [RawWebSocket] = []
            for _ in 0..<10 { sockets.append(try await cluster.connect(0, "/ws", user: "bob")) }
            defer { sockets.forEach { $0.close() } }
            // The user is at the limit everywhere.
            let refused = try await Self.storm(cluster, count: 1) { _ in "bob" }
            #expect(Self.admitted(refused).isEmpty)

            // A clean close on a live node releases its count right away.
            sockets.removeLast().close()
            let reopened = await eventually {
                guard let socket = try? await cluster.connect(1, "/ws", user: "bob") else { return false }
                sockets.append(socket)
                return true
            }
            #expect(reopened)

            cluster.kill9(0)
            let clock = ContinuousClock()
            let killedAt = clock.now
            // Right after the kill the dead node's nine connections still count: only the lease
            // expiry, not the kill itself, may release them.
            let stillHeld = try await Self.storm(cluster, count: 1, on: [1]) { _ in "bob" }
            Self.admitted(stillHeld).forEach { $0.close() }
            #expect(
                Self.admitted(stillHeld).isEmpty,
                "bob was admitted \(clock.now - killedAt) after the kill, before the lease could expire")
            // Within the lease (plus slack) bob may connect again.
            let bound = .seconds(Self.leaseSeconds) + Self.leaseSlack
            let admittedAgain = await eventually(within: bound) {
                guard let socket = try? await cluster.connect(2, "/ws", user: "bob") else { return false }
                sockets.append(socket)
                return true
            }
            let waited = clock.now - killedAt
            #expect(
                admittedAgain, "bob was still refused \(waited) after the kill; the lease is \(Self.leaseSeconds) s")
            #expect(
                waited <= bound, "the count was released \(waited) after the kill; the lease is \(Self.leaseSeconds) s")
        }
    }
}
