import AiravataCore
import AiravataTestSupport
import Testing

/// `airavata-gateway publish --secret` against a node that requires an issuer and audience.
@Suite("publish subcommand: minted tokens carry the issuer and audience")
struct PublishCommandTests {
    static let issuer = "airavata-scheduler"
    static let audience = "airavata-users"

    static func publish(port: Int, _ extra: [String], environment: [String: String] = [:]) async throws -> (
        Int32, String
    ) {
        try await runToCompletion(
            try gatewayBinary(),
            [
                "publish", "--url", "http://127.0.0.1:\(port)", "--secret", TestGateway.secret, "--type",
                "system_status", "--data", #"{"notice":"cli"}"#,
            ] + extra,
            environment: environment)
    }

    @Test("with --issuer/--audience or their environment variables: 202; without: 401")
    func issuerAndAudience() async throws {
        let token = TokenVerifierConfiguration(
            hmacSecret: TestGateway.secret, issuer: Self.issuer, audience: Self.audience)
        let node = try await TestGateway.start(token: token)
        do {
            try await Self.check(node)
        } catch {
            await node.stop()
            throw error
        }
        await node.stop()
    }

    static func check(_ node: TestGateway) async throws {
        let flags = try await Self.publish(port: node.port, ["--issuer", Self.issuer, "--audience", Self.audience])
        #expect(flags.0 == 0, "expected 202 with --issuer/--audience, got: \(flags.1)")
        #expect(flags.1.contains(#""accepted":1"#), "got: \(flags.1)")

        let environment = try await Self.publish(
            port: node.port, [],
            environment: ["AIRAVATA_JWT_ISSUER": Self.issuer, "AIRAVATA_JWT_AUDIENCE": Self.audience])
        #expect(environment.0 == 0, "expected 202 with AIRAVATA_JWT_ISSUER/AUDIENCE, got: \(environment.1)")

        let bare = try await Self.publish(port: node.port, [])
        #expect(bare.0 != 0, "a token without iss/aud must be refused, got: \(bare.1)")
        #expect(bare.1.contains("Invalid or expired token"), "got: \(bare.1)")
    }
}
