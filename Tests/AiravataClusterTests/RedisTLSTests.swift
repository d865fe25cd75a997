import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// `rediss://` against a real TLS redis-server whose certificate a test CA signed, reached by
/// host name and by IP address: an IP address must not be sent as SNI (NIOSSL refuses to, so
/// every `rediss://10.…` failed) and is checked against the certificate's IP SANs instead.
@Suite("Cluster: Redis over TLS", .serialized)
struct RedisTLSTests {
    static let secret = "redis-tls-test-secret-that-is-long-enough-0123"

    static func tlsRedis(_ fixtures: TLSFixtures) async throws -> ConfiguredRedis {
        try await ConfiguredRedis.start(
            listen: { port in
                [
                    "--port", "0", "--tls-port", "\(port)", "--tls-cert-file", fixtures.serverCertificate,
                    "--tls-key-file", fixtures.serverKey, "--tls-ca-cert-file", fixtures.caCertificate,
                    // The gateway presents no client certificate.
                    "--tls-auth-clients", "no",
                ]
            },
            cli: { port in ["--tls", "--cacert", fixtures.caCertificate, "-h", "127.0.0.1", "-p", "\(port)"] }
        )
    }

    static func node(redisURL: String, caFile: String, logLevel: String = "warning") throws -> GatewayProcess {
        try GatewayProcess.start(
            arguments: [
                "--redis-url", redisURL, "--redis-tls-ca", caFile, "--node-id", "tls-node", "--drain-delay", "0",
                "--stats-interval", "0", "--log-level", logLevel,
            ],
            environment: ["AIRAVATA_JWT_SECRET": secret]
        )
    }

    @Test(
        "a node serves through a TLS Redis reached by host name or by IP address",
        arguments: ["localhost", "127.0.0.1"])
    func reachesTLSRedis(host: String) async throws {
        let fixtures = try await TLSFixtures.make()
        defer { fixtures.remove() }
        let redis = try await Self.tlsRedis(fixtures)
        defer { redis.stop() }
        let node = try Self.node(redisURL: "rediss://\(host):\(redis.port)/0", caFile: fixtures.caCertificate)
        defer { node.stop() }
        try await node.waitFor("/readyz", toAnswer: 200)

        let issuer = await TokenIssuer(hmacSecret: Self.secret)
        let listener = try await node.connect("/ws/user", token: try await issuer.token(subject: "alice"))
        defer { listener.close() }
        let note = JSONValue.object([
            "type": .string("system_status"), "data": .object(["notice": .string("over tls to \(host)")]),
        ])
        try await node.publish(note, token: try await issuer.token(subject: "producer", roles: ["service"]))
        let delivered = try await listener.nextMessage { $0["data"]?["notice"] != nil }
        #expect(delivered["data"]?["notice"]?.stringValue == "over tls to \(host)")
        // The event went through the TLS Redis: it is the newest in the replay stream there.
        let newest = try await redis.cli("XREVRANGE", "airavata:events", "+", "-", "COUNT", "1")
        #expect(newest.contains("over tls to \(host)"), "expected the event in the TLS Redis's stream, got '\(newest)'")
    }

    @Test(
        "a certificate that does not name what the URL asks for, or that another CA signed, is refused",
        arguments: [
            // The certificate names localhost only: 127.0.0.1 must be checked against IP SANs.
            ("DNS:localhost", "127.0.0.1", false),
            ("DNS:redis.example", "localhost", false),
            ("DNS:localhost,IP:127.0.0.1", "localhost", true),
        ])
    func refusesWrongCertificate(names: String, host: String, otherCA: Bool) async throws {
        let fixtures = try await TLSFixtures.make(serverNames: names)
        defer { fixtures.remove() }
        let stranger = try await TLSFixtures.make()
        defer { stranger.remove() }
        let redis = try await Self.tlsRedis(fixtures)
        defer { redis.stop() }
        let node = try Self.node(
            redisURL: "rediss://\(host):\(redis.port)/0",
            caFile: otherCA ? stranger.caCertificate : fixtures.caCertificate,
            logLevel: "debug")
        defer { node.stop() }
        let failed = await eventually(within: .seconds(10)) { node.log().contains("redis connect failed") }
        #expect(failed, "expected the node to log a failed Redis connection; its log:\n\(node.log())")
        // Refused at connect: no link counts as up, even for a moment.
        #expect(!node.log().contains("redis connected"), "a link came up on a refused certificate:\n\(node.log())")
        #expect(await node.status("/readyz") == 503, "the node is ready on a refused certificate; log:\n\(node.log())")
    }

    @Test("--redis-tls-ca without rediss://, or naming no readable file, stops the node at start")
    func caFlagChecked() async throws {
        let fixtures = try await TLSFixtures.make()
        defer { fixtures.remove() }
        let cases = [
            ("redis://127.0.0.1:6379/0", fixtures.caCertificate, "needs a rediss:// URL"),
            ("rediss://127.0.0.1:6379/0", fixtures.directory.appendingPathComponent("absent.pem").path, "cannot read"),
        ]
        for (url, caFile, complaint) in cases {
            let node = try GatewayProcess.start(
                arguments: ["--redis-url", url, "--redis-tls-ca", caFile],
                environment: ["AIRAVATA_JWT_SECRET": Self.secret])
            defer { node.stop() }
            let status = try await node.exitStatus(within: .seconds(10))
            #expect(status != 0, "the node started with --redis-url \(url) --redis-tls-ca \(caFile)")
            #expect(node.log().contains(complaint), "expected '\(complaint)' in: \(node.log())")
        }
    }
}

extension RawWebSocket {
    /// The next message that `matches`, skipping others; bounded like `nextMessage`.
    func nextMessage(timeout: Duration = .seconds(10), where matches: (JSONValue) -> Bool) async throws -> JSONValue {
        while true {
            let message = try await nextMessage(timeout: timeout)
            if matches(message) { return message }
        }
    }
}
