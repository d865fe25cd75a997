import AiravataProtocol
import AiravataTestSupport
import Foundation
import JWTKit
import Testing

/// `--jwks` on a real node process: a JWKS file with several keys, each token checked with
/// the key its `kid` names and no other.
@Suite("JWKS: keys chosen by kid")
struct JWKSTests {
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// A token for `user` signed by `key` and labelled `kid` (which need not be the key's;
    /// nil: no `kid` in the header).
    static func token(_ user: String, signedBy key: ES256PrivateKey, kid: String?) async throws -> String {
        let keys = JWTKeyCollection()
        let identifier = kid.map { JWKIdentifier(string: $0) }
        await keys.add(ecdsa: key, kid: identifier)
        return try await keys.sign(
            Claims(sub: SubjectClaim(value: user), exp: ExpirationClaim(value: Date().addingTimeInterval(600))),
            kid: identifier)
    }

    static func jwk(_ key: ES256PrivateKey, kid: String) throws -> String {
        let point = try #require(key.publicKey.parameters)
        return
            #"{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(point.x)","y":"\#(point.y)"}"#
    }

    @Test("each listed key verifies the tokens labelled with its kid; an unknown kid or another key's is refused")
    func severalKeys() async throws {
        let first = ES256PrivateKey()
        let second = ES256PrivateKey()
        let stranger = ES256PrivateKey()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString).json")
        try #"{"keys":[\#(try Self.jwk(first, kid: "key-1")),\#(try Self.jwk(second, kid: "key-2"))]}"#.write(
            to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let node = try GatewayProcess.start(
            arguments: ["--jwks", file.path, "--stats-interval", "0", "--drain-delay", "0", "--log-level", "warning"])
        defer { node.stop() }
        try await node.waitFor("/readyz", toAnswer: 200)

        for (user, key, kid) in [("alice", first, "key-1"), ("bob", second, "key-2")] {
            let socket = try await RawWebSocket.connect(
                port: node.port, path: "/ws/user?token=\(try await Self.token(user, signedBy: key, kid: kid))")
            defer { socket.close() }
            let connected = try await socket.nextMessage()
            #expect(
                connected["data"]?["action"]?.stringValue == "connected",
                "a token signed by \(kid) was not admitted: \(connected.jsonString)")
        }

        let refused = [
            ("an unknown kid", try await Self.token("mallory", signedBy: stranger, kid: "key-3")),
            // Not the first key as a default for a kid the set does not hold.
            ("key-1's signature under an unknown kid", try await Self.token("mallory", signedBy: first, kid: "key-3")),
            ("key-1's signature without a kid", try await Self.token("mallory", signedBy: first, kid: nil)),
            ("key-2's signature labelled key-1", try await Self.token("mallory", signedBy: second, kid: "key-1")),
            (
                "a stranger's signature labelled key-2",
                try await Self.token("mallory", signedBy: stranger, kid: "key-2")
            ),
        ]
        for (name, token) in refused {
            let socket = try await RawWebSocket.connect(port: node.port, path: "/ws/user?token=\(token)")
            defer { socket.close() }
            let message = try await socket.nextMessage()
            #expect(message["error"]?.stringValue == "Invalid or expired token", "\(name): got \(message.jsonString)")
            #expect(try await socket.expectClose().code == 1008, "\(name)")
        }
    }

    @Test("a JWKS with a key that has no kid stops the node at start, saying so")
    func keyWithoutKid() async throws {
        let key = ES256PrivateKey()
        let point = try #require(key.publicKey.parameters)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString).json")
        try #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","x":"\#(point.x)","y":"\#(point.y)"}]}"#.write(
            to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let node = try GatewayProcess.start(arguments: ["--jwks", file.path, "--log-level", "warning"])
        defer { node.stop() }
        let status = try await node.exitStatus(within: .seconds(10))
        #expect(status != 0, "the node started with a JWKS key that no token can name")
        #expect(node.log().contains("needs a kid of its own"), "the error does not say why: \(node.log())")
    }
}
