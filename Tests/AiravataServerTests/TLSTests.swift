import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Foundation
import NIOSSL
import Testing

@Suite("wss:// served directly")
struct TLSTests {
    /// A throw-away self-signed certificate made with openssl.
    static func selfSignedContext() async throws -> NIOSSLContext {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = directory.appendingPathComponent("key.pem").path
        let certificate = directory.appendingPathComponent("cert.pem").path
        let (status, output) = try await runToCompletion(
            try executable(named: "openssl"),
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "1",
                "-subj", "/CN=localhost",
            ])
        try #require(status == 0, "openssl could not make a certificate: \(output)")
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        )
        return try NIOSSLContext(configuration: configuration)
    }

    @Test("a client speaks the protocol over TLS; plain WebSocket is not answered as one")
    func wss() async throws {
        var server = ServerConfiguration()
        server.tls = try await Self.selfSignedContext()
        try await TestGateway.with(server: server) { node in
            let token = try await node.token("alice")
            let secure = try await RawWebSocket.connect(port: node.port, path: "/ws/user?token=\(token)", tls: true)
            defer { secure.close() }
            try await secure.send(.object(["type": .string("ping")]))
            #expect(try await secure.nextMessage(ofType: "pong")["type"]?.stringValue == "pong")
            _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "over tls"))
            #expect(try await secure.nextMessage()["data"]?["title"]?.stringValue == "over tls")

            await #expect(throws: (any Error).self) {
                _ = try await RawWebSocket.connect(port: node.port, path: "/ws/user?token=\(token)")
            }
        }
    }

    @Test("a TCP connection that never starts its TLS handshake is closed at the request timeout")
    func silentTLS() async throws {
        var server = ServerConfiguration()
        server.tls = try await Self.selfSignedContext()
        server.requestTimeoutSeconds = 0.5
        try await TestGateway.with(server: server) { node in
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let (_, closed) = try await socket.readUntilClosed(timeout: .seconds(5))
            #expect(closed, "a silent connection to a TLS node stayed open")
        }
    }
}
