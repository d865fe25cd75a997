import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Foundation
import JWTKit
import Testing

@Suite("Authentication over real WebSockets")
struct AuthenticationTests {
    @Test("a token in the query string is accepted")
    func tokenInQuery() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws/user", user: "alice")
            defer { socket.close() }
            let reply = try await node.subscribe(socket, "experiment", "exp-1")
            #expect(reply["data"]?["status"]?.stringValue == "success")
        }
    }

    @Test("a token in the Authorization header is accepted")
    func tokenInHeader() async throws {
        try await TestGateway.with { node in
            let token = try await node.token("alice")
            let socket = try await RawWebSocket.connect(
                port: node.port,
                path: "/ws/user",
                headers: [("Authorization", "Bearer \(token)")]
            )
            defer { socket.close() }
            let connected = try await socket.nextMessage()
            #expect(connected["type"]?.stringValue == "system_status")
            #expect(connected["data"]?["action"]?.stringValue == "connected")
            try await socket.send(.object(["type": .string("ping")]))
            let pong = try await socket.nextMessage()
            #expect(pong["type"]?.stringValue == "pong")
        }
    }

    @Test("a WebSocket upgrade on a connection that already served plain HTTP requests works")
    func upgradeAfterPlainRequests() async throws {
        try await TestGateway.with { node in
            let token = try await node.token("alice")
            let socket = try await RawWebSocket.connect(
                port: node.port, path: "/ws/user?token=\(token)", plainRequestsFirst: ["/healthz", "/readyz"])
            defer { socket.close() }
            let connected = try await socket.nextMessage()
            #expect(connected["data"]?["action"]?.stringValue == "connected")
            try await socket.send(.object(["type": .string("ping")]))
            #expect(try await socket.nextMessage()["type"]?.stringValue == "pong")
        }
    }

    @Test("no token: 'Authentication required', then close 1008")
    func missingToken() async throws {
        try await TestGateway.with { node in
            let socket = try await RawWebSocket.connect(port: node.port, path: "/ws/experiments/exp-1")
            defer { socket.close() }
            let message = try await socket.nextMessage()
            #expect(message["type"]?.stringValue == "error")
            #expect(message["error"]?.stringValue == "Authentication required")
            let close = try await socket.expectClose()
            #expect(close.code == 1008)
        }
    }

    static let badTokens: [(String, @Sendable () async throws -> String)] = [
        ("garbage", { "not-a-jwt" }),
        (
            "forged with another secret",
            {
                try await TokenIssuer(hmacSecret: "another-secret-that-is-also-long-enough-0123456").token(
                    subject: "alice")
            }
        ),
        (
            "expired",
            {
                try await TokenIssuer(hmacSecret: TestGateway.secret).token(
                    subject: "alice",
                    lifetime: 60,
                    now: Date().addingTimeInterval(-3600)
                )
            }
        ),
        (
            "alg none",
            {
                let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLEncoded
                let exp = Int(Date().timeIntervalSince1970) + 3600
                let payload = Data(#"{"sub":"alice","exp":\#(exp),"roles":["admin"]}"#.utf8).base64URLEncoded
                return "\(header).\(payload)."
            }
        ),
        (
            "tampered payload",
            {
                let token = try await TokenIssuer(hmacSecret: TestGateway.secret).token(subject: "alice")
                let parts = token.split(separator: ".").map(String.init)
                let exp = Int(Date().timeIntervalSince1970) + 3600
                let payload = Data(#"{"sub":"alice","exp":\#(exp),"roles":["admin"]}"#.utf8).base64URLEncoded
                return "\(parts[0]).\(payload).\(parts[2])"
            }
        ),
    ]

    @Test("a bad token: 'Invalid or expired token', then close 1008", arguments: 0..<badTokens.count)
    func invalidToken(index: Int) async throws {
        let (name, make) = Self.badTokens[index]
        try await TestGateway.with { node in
            let token = try await make()
            let socket = try await RawWebSocket.connect(port: node.port, path: "/ws/user?token=\(token)")
            defer { socket.close() }
            let message = try await socket.nextMessage()
            #expect(message["error"]?.stringValue == "Invalid or expired token", "case: \(name)")
            let close = try await socket.expectClose()
            #expect(close.code == 1008, "case: \(name)")
        }
    }

    @Test("tokens from the Airavata scheduler (user_id, is_admin, iss, aud) work unchanged")
    func schedulerTokens() async throws {
        let secret = TestGateway.secret
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let claims = SchedulerClaims(
            user_id: "sched-user",
            username: "sched",
            email: "sched@example.org",
            is_admin: true,
            iss: IssuerClaim(value: "airavata-scheduler"),
            aud: AudienceClaim(value: ["airavata-users"]),
            exp: ExpirationClaim(value: Date().addingTimeInterval(600))
        )
        let token = try await keys.sign(claims)
        let verifier = try await TokenVerifier(
            configuration: TokenVerifierConfiguration(
                hmacSecret: secret,
                issuer: "airavata-scheduler",
                audience: "airavata-users"
            )
        )
        let principal = try await verifier.verify(token)
        #expect(principal.userID == "sched-user")
        #expect(principal.isAdmin)

        let strict = try await TokenVerifier(
            configuration: TokenVerifierConfiguration(hmacSecret: secret, issuer: "someone-else")
        )
        await #expect(throws: TokenError.self) { try await strict.verify(token) }
    }
}

struct SchedulerClaims: JWTPayload {
    var user_id: String
    var username: String
    var email: String
    var is_admin: Bool
    var iss: IssuerClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

extension Data {
    var base64URLEncoded: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
