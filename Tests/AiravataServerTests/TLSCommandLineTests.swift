import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Testing

/// `--tls-cert`/`--tls-key` given to a real node process: it serves https:// and wss:// with
/// that certificate (a client that trusts only the test CA checks it), and refuses to start
/// with a key that does not belong to the certificate.
@Suite("TLS from the command line")
struct TLSCommandLineTests {
    static let secret = "tls-command-line-secret-that-is-long-enough-01"

    @Test("the node serves its certificate by name and by IP address, and speaks wss://")
    func servesTheGivenCertificate() async throws {
        let fixtures = try await TLSFixtures.make()
        defer { fixtures.remove() }
        let node = try GatewayProcess.start(
            arguments: [
                "--tls-cert", fixtures.serverCertificate, "--tls-key", fixtures.serverKey, "--stats-interval", "0",
                "--drain-delay", "0", "--log-level", "warning",
            ],
            environment: ["AIRAVATA_JWT_SECRET": Self.secret],
            tls: HTTPProbe.TLS(caFile: fixtures.caCertificate, serverName: "localhost"))
        defer { node.stop() }
        try await node.waitFor("/healthz", toAnswer: 200)
        let byAddress = try await HTTPProbe.request(
            port: node.port, path: "/healthz", tls: HTTPProbe.TLS(caFile: fixtures.caCertificate, serverName: nil))
        #expect(byAddress.status == 200)
        // A client that trusts another CA is not fooled.
        let stranger = try await TLSFixtures.make()
        defer { stranger.remove() }
        await #expect(throws: (any Error).self) {
            try await HTTPProbe.request(
                port: node.port, path: "/healthz",
                tls: HTTPProbe.TLS(caFile: stranger.caCertificate, serverName: "localhost"))
        }
        // Plain HTTP gets no HTTP answer from a TLS port.
        let plain = try? await HTTPProbe.request(port: node.port, path: "/healthz")
        #expect(plain?.status == nil, "plain HTTP was answered \(plain?.status ?? 0) on the TLS port")

        let issuer = await TokenIssuer(hmacSecret: Self.secret)
        let socket = try await node.connect("/ws/user", token: try await issuer.token(subject: "alice"))
        defer { socket.close() }
        let note = JSONValue.object([
            "type": .string("user_notification"),
            "data": .object(["userId": .string("alice"), "title": .string("over wss"), "level": .string("info")]),
        ])
        try await node.publish(note, token: try await issuer.token(subject: "producer", roles: ["service"]))
        let delivered = try await socket.nextMessage(ofType: "user_notification")
        #expect(delivered["data"]?["title"]?.stringValue == "over wss")
    }

    @Test("a key that does not match the certificate stops the node at start with a clear error")
    func mismatchedKey() async throws {
        let fixtures = try await TLSFixtures.make()
        defer { fixtures.remove() }
        let other = try await TLSFixtures.make()
        defer { other.remove() }
        let node = try GatewayProcess.start(
            arguments: [
                "--tls-cert", fixtures.serverCertificate, "--tls-key", other.serverKey, "--log-level", "warning",
            ],
            environment: ["AIRAVATA_JWT_SECRET": Self.secret])
        defer { node.stop() }
        let status = try await node.exitStatus(within: .seconds(10))
        #expect(status != 0, "the node started with a key that is not the certificate's; log:\n\(node.log())")
        #expect(node.log().lowercased().contains("tls"), "the error does not say TLS: \(node.log())")
    }
}
