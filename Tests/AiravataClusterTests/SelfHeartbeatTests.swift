import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Testing

/// A subscriber connection that stays open but carries nothing (a NAT or firewall forgot it)
/// gives no error to notice: only the node's heartbeat through its own channel shows it.
@Suite("Cluster: the self-heartbeat finds a silent subscriber", .serialized)
struct SelfHeartbeatTests {
    static let secret = "self-heartbeat-test-secret-that-is-long-enough"

    @Test("a silent subscriber turns /readyz 503, is rebuilt, and the event published meanwhile arrives")
    func silentSubscriber() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let relay = try await TCPRelay.start(to: redis.port)
        defer { relay.stop() }
        let common = ["--drain-delay", "0", "--stats-interval", "0", "--log-level", "warning"]
        // Both links of this node go through the relay; only its subscriber will go silent.
        let node = try GatewayProcess.start(
            arguments: [
                "--redis-url", "redis://127.0.0.1:\(relay.port)/0", "--node-id", "behind-relay",
                "--redis-outage-grace", "1",
            ] + common,
            environment: ["AIRAVATA_JWT_SECRET": Self.secret])
        defer { node.stop() }
        let producer = try GatewayProcess.start(
            arguments: ["--redis-url", redis.url, "--node-id", "producer"] + common,
            environment: ["AIRAVATA_JWT_SECRET": Self.secret])
        defer { producer.stop() }
        try await node.waitFor("/readyz", toAnswer: 200)
        try await producer.waitFor("/readyz", toAnswer: 200)

        let issuer = await TokenIssuer(hmacSecret: Self.secret)
        let service = try await issuer.token(subject: "producer", roles: ["service"])
        let listener = try await node.connect("/ws/user", token: try await issuer.token(subject: "alice"))
        defer { listener.close() }
        func notice(_ text: String) -> JSONValue {
            .object(["type": .string("system_status"), "data": .object(["notice": .string(text)])])
        }
        try await producer.publish(notice("before"), token: service)
        let before = try await listener.nextMessage { $0["data"]?["notice"] != nil }
        #expect(before["data"]?["notice"]?.stringValue == "before")

        #expect(relay.connectionCount(thatSent: "SUBSCRIBE") == 1)
        // Silent, not closed; and Redis stays out of reach, so that the outage is long enough
        // to be seen and the rebuilt subscriber must wait for it.
        try await relay.stopListening()
        #expect(relay.silence(connectionsThatSent: "SUBSCRIBE") == 1)
        try await node.waitFor("/readyz", toAnswer: 503, within: .seconds(15))

        try await producer.publish(notice("while silent"), token: service)
        #expect(try await listener.expectSilence(for: .milliseconds(300)) == nil)

        try await relay.startListening()
        try await node.waitFor("/readyz", toAnswer: 200, within: .seconds(15))
        let rebuilt = await eventually { relay.connectionCount(thatSent: "SUBSCRIBE") >= 2 }
        #expect(
            rebuilt,
            "expected a new subscriber connection after the silence; saw \(relay.connectionCount(thatSent: "SUBSCRIBE"))"
        )
        let missed = try await listener.nextMessage { $0["data"]?["notice"] != nil }
        #expect(missed["data"]?["notice"]?.stringValue == "while silent")

        // Live again, and nothing twice: a sentinel ends the check.
        try await producer.publish(notice("after"), token: service)
        let after = try await listener.nextMessage { $0["data"]?["notice"] != nil }
        #expect(after["data"]?["notice"]?.stringValue == "after")
    }
}
