import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// A Redis that asks for a password, and one whose gateway user may run only the commands
/// the gateway needs: the list in docs/security.md, read and run here.
@Suite("Cluster: Redis with a password and with an ACL user", .serialized)
struct RedisAuthTests {
    static let secret = "redis-auth-test-secret-that-is-long-enough-0123"

    /// The gateway user's commands as docs/security.md lists them ("Redis: password, ACL
    /// user, TLS"): the test runs the documented user, so the two cannot drift apart.
    static func documentedCommands(filePath: String = #filePath) throws -> [String] {
        let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let doc = try String(contentsOf: root.appendingPathComponent("docs/security.md"), encoding: .utf8)
        guard let line = doc.split(separator: "\n").first(where: { $0.hasPrefix("ACL SETUSER gateway ") }) else {
            throw TestSupportError("docs/security.md has no 'ACL SETUSER gateway …' line")
        }
        return line.split(separator: " ").filter { $0.hasPrefix("+") }.map { String($0.dropFirst()) }
    }

    static func redis() async throws -> ConfiguredRedis {
        try await ConfiguredRedis.start(listen: { ["--port", "\($0)"] }, cli: { ["-h", "127.0.0.1", "-p", "\($0)"] })
    }

    static func node(_ name: String, redisURL: String, extra: [String] = []) throws -> GatewayProcess {
        try GatewayProcess.start(
            arguments: [
                "--redis-url", redisURL, "--node-id", name, "--drain-delay", "0", "--stats-interval", "1",
                "--log-level", "warning", "--max-connections-per-user", "2",
            ] + extra,
            environment: ["AIRAVATA_JWT_SECRET": secret])
    }

    static func open(_ node: GatewayProcess, _ path: String, token: String, query: String = "")
        async throws -> (RawWebSocket, JSONValue)
    {
        let socket = try await RawWebSocket.connect(port: node.port, path: "\(path)?token=\(token)\(query)")
        return (socket, try await socket.nextMessage())
    }

    static func experiment(status: String, id: String? = nil) -> JSONValue {
        .object([
            "id": id.map { .string($0) } ?? .null,
            "type": .string("experiment_updated"),
            "data": .object([
                "experiment": .object([
                    "id": .string("e-1"), "status": .string(status), "ownerId": .string("alice"),
                    "projectId": .string("p-1"),
                ])
            ]),
        ])
    }

    /// Exercises what touches Redis: admission counts and the per-user limit, ownership, a
    /// delivery across nodes, a resume on the other node from the session and the replay
    /// log, statistics.
    static func exercise(_ first: GatewayProcess, _ second: GatewayProcess) async throws {
        try await first.waitFor("/readyz", toAnswer: 200)
        try await second.waitFor("/readyz", toAnswer: 200)
        let issuer = await TokenIssuer(hmacSecret: secret)
        let service = try await issuer.token(subject: "producer", roles: ["service"])
        let alice = try await issuer.token(subject: "alice", projects: ["p-1"])

        let (listener, connected) = try await open(second, "/ws/projects/p-1", token: alice)
        let session = try #require(
            connected["data"]?["sessionId"]?.stringValue, "expected 'connected', got \(connected.jsonString)")
        try await first.publish(experiment(status: "RUNNING"), token: service)
        let delivered = try await listener.nextMessage(ofType: "experiment_updated")
        #expect(delivered["data"]?["experiment"]?["status"]?.stringValue == "RUNNING")
        let cursor = try #require(delivered["cursor"]?.stringValue)
        listener.close()

        try await first.publish(experiment(status: "COMPLETED"), token: service)
        let (resumed, again) = try await open(first, "/ws", token: alice, query: "&session=\(session)&cursor=\(cursor)")
        defer { resumed.close() }
        #expect(again["data"]?["resumed"] == .bool(true), "expected a resume, got \(again)")
        let missed = try await resumed.nextMessage(ofType: "experiment_updated")
        #expect(missed["data"]?["experiment"]?["status"]?.stringValue == "COMPLETED")

        // The per-user limit (2 here) is counted in Redis across nodes.
        let bob = try await issuer.token(subject: "bob")
        let one = try await first.connect("/ws/user", token: bob)
        defer { one.close() }
        let two = try await second.connect("/ws/user", token: bob)
        defer { two.close() }
        let (three, refusal) = try await open(first, "/ws/user", token: bob)
        defer { three.close() }
        #expect(refusal["error"]?.stringValue == "Connection limit exceeded: at most 2 connections per user")

        let stats = try await HTTPProbe.request(port: second.port, path: "/api/v1/stats")
        #expect(stats.status == 200, "statistics answered \(stats.status): \(stats.body)")
    }

    @Test("with requirepass: the password from the URL or from --redis-password")
    func requirePass() async throws {
        let redis = try await Self.redis()
        defer { redis.stop() }
        try await redis.cli("CONFIG", "SET", "requirepass", "redis-pass-1")
        let first = try Self.node("n1", redisURL: "redis://:redis-pass-1@127.0.0.1:\(redis.port)/0")
        defer { first.stop() }
        let second = try Self.node(
            "n2", redisURL: "redis://127.0.0.1:\(redis.port)/0", extra: ["--redis-password", "redis-pass-1"])
        defer { second.stop() }
        try await Self.exercise(first, second)
        let clients = try await redis.cli(arguments: ["-a", "redis-pass-1", "CLIENT", "LIST"])
        #expect(clients.split(separator: "\n").count >= 4, "expected both nodes' links in CLIENT LIST:\n\(clients)")
    }

    @Test("with an ACL user allowed only the gateway's commands and key prefix: nothing is denied")
    func aclUser() async throws {
        let commands = try Self.documentedCommands()
        #expect(commands.contains("eval") && commands.contains("subscribe"), "read the wrong list: \(commands)")
        let redis = try await Self.redis()
        defer { redis.stop() }
        try await redis.cli("ACL", "SETUSER", "admin", "on", ">admin-pass-1", "~*", "&*", "+@all")
        try await redis.cli(
            arguments: ["ACL", "SETUSER", "gateway", "reset", "on", ">gateway-pass-1", "~airavata:*", "&airavata:*"]
                + commands.map { "+\($0)" })
        try await redis.cli("ACL", "SETUSER", "default", "off")
        let admin = ["--user", "admin", "--pass", "admin-pass-1"]
        let url = "redis://gateway:gateway-pass-1@127.0.0.1:\(redis.port)/0"
        // v3 from the start: under `automatic` a node writes v1 until its first heartbeat shows
        // every node reads v3, which this test would finish before, never running the v3 script.
        // A short log, so that the v3 script's trim runs too.
        let pinned = ["--bus-format", "v3", "--replay-length", "100"]
        let first = try Self.node("n1", redisURL: url, extra: pinned)
        defer { first.stop() }
        let second = try Self.node("n2", redisURL: url, extra: pinned)
        defer { second.stop() }
        do {
            try await Self.exercise(first, second)
            // Events with producer ids take the deduplicating script: new, then a retry.
            let service = try await TokenIssuer(hmacSecret: Self.secret).token(subject: "producer", roles: ["service"])
            let event = Self.experiment(status: "QUEUED", id: "acl-retry-1")
            try await first.publish(event, token: service)
            try await second.publish(event, token: service)
            // 200 events in blocks of 10: past the log's length and its trim margin.
            for call in 0..<20 {
                let notices = (0..<10).map {
                    JSONValue.object([
                        "type": .string("system_status"), "data": .object(["notice": .string("acl-\(call)-\($0)")]),
                    ])
                }
                try await first.publish(.array(notices), token: service)
            }
        } catch {
            // What Redis refused explains the failure better than the symptom does.
            let denied = try await redis.cli(arguments: admin + ["ACL", "LOG"])
            Issue.record("\(error)\nACL LOG:\n\(denied)")
            return
        }
        let denied = try await redis.cli(arguments: admin + ["ACL", "LOG"])
        #expect(denied.isEmpty, "Redis denied the gateway user something:\n\(denied)")
        // The user is as narrow as it says: a command outside the list is refused.
        let outside = try await redis.cli(arguments: ["--user", "gateway", "--pass", "gateway-pass-1", "KEYS", "*"])
        #expect(outside.contains("NOPERM"), "KEYS was not refused: \(outside)")
    }
}
