import Foundation
import JWTKit
import Testing

@testable import AiravataCore

@Suite("Token verification")
struct TokenVerifierTests {
    static let secret = "unit-test-secret-with-at-least-32-bytes!!"

    static func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "pem"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    struct Claims: JWTPayload {
        var sub: String
        var exp: ExpirationClaim
        var nbf: NotBeforeClaim?
        var projects: [String]?
        var roles: [String]?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func claims(exp: TimeInterval = 600, nbf: TimeInterval? = nil) -> Claims {
        Claims(
            sub: "alice",
            exp: ExpirationClaim(value: Date().addingTimeInterval(exp)),
            nbf: nbf.map { NotBeforeClaim(value: Date().addingTimeInterval($0)) },
            projects: ["p-1"],
            roles: ["service"]
        )
    }

    @Test("HS256: claims become a principal")
    func hs256() async throws {
        let verifier = try await TokenVerifier(configuration: .init(hmacSecret: Self.secret))
        let token = try await TokenIssuer(hmacSecret: Self.secret).token(
            subject: "alice", projects: ["p-1"], roles: ["service"])
        let principal = try await verifier.verify(token)
        #expect(principal == Principal(userID: "alice", projects: ["p-1"], roles: ["service"]))
        #expect(principal.mayPublish)
        #expect(!principal.isAdmin)
    }

    @Test("a secret shorter than 32 bytes is refused at start-up")
    func weakSecret() async {
        await #expect(throws: TokenConfigurationError.self) {
            _ = try await TokenVerifier(configuration: .init(hmacSecret: "short"))
        }
        await #expect(throws: TokenConfigurationError.self) {
            _ = try await TokenVerifier(configuration: .init())
        }
    }

    @Test("iss and aud compare as bytes: another Unicode spelling of the configured value is refused")
    func issuerAndAudienceAsBytes() async throws {
        let verifier = try await TokenVerifier(
            configuration: .init(hmacSecret: Self.secret, issuer: "caf\u{E9}-issuer", audience: "caf\u{E9}-users"))
        func claims(iss: String, aud: String) -> TokenClaims {
            TokenClaims(
                sub: "alice", exp: ExpirationClaim(value: Date().addingTimeInterval(600)), iss: IssuerClaim(value: iss),
                aud: AudienceClaim(value: [aud]))
        }
        let now = Date()
        _ = try verifier.principal(from: claims(iss: "caf\u{E9}-issuer", aud: "caf\u{E9}-users"), now: now)
        #expect(throws: TokenError.self, "an NFD issuer passed as the NFC one") {
            try verifier.principal(from: claims(iss: "cafe\u{301}-issuer", aud: "caf\u{E9}-users"), now: now)
        }
        #expect(throws: TokenError.self, "an NFD audience passed as the NFC one") {
            try verifier.principal(from: claims(iss: "caf\u{E9}-issuer", aud: "cafe\u{301}-users"), now: now)
        }
    }

    @Test("expiry and not-before honour the leeway")
    func timeClaims() async throws {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: Self.secret), digestAlgorithm: .sha256)
        let verifier = try await TokenVerifier(configuration: .init(hmacSecret: Self.secret, leewaySeconds: 30))
        _ = try await verifier.verify(try await keys.sign(Self.claims(exp: -10)))
        await #expect(throws: TokenError.self) { try await verifier.verify(try await keys.sign(Self.claims(exp: -60))) }
        _ = try await verifier.verify(try await keys.sign(Self.claims(nbf: 10)))
        await #expect(throws: TokenError.self) { try await verifier.verify(try await keys.sign(Self.claims(nbf: 120))) }
    }

    @Test("RS256 with a PEM public key; an HS256 token signed with that public key is refused")
    func rs256AndConfusion() async throws {
        let publicPEM = try Self.fixture("rsa-public")
        let privateKey = try Insecure.RSA.PrivateKey(pem: try Self.fixture("rsa-private"))
        let signer = JWTKeyCollection()
        await signer.add(rsa: privateKey, digestAlgorithm: .sha256)
        let verifier = try await TokenVerifier(configuration: .init(publicKeyPEM: publicPEM))
        let principal = try await verifier.verify(try await signer.sign(Self.claims()))
        #expect(principal.userID == "alice")

        // The classic confusion attack: HS256 keyed with the public key's text.
        let confused = JWTKeyCollection()
        await confused.add(hmac: HMACKey(from: publicPEM), digestAlgorithm: .sha256)
        let forged = try await confused.sign(Self.claims())
        await #expect(throws: TokenError.invalid(reason: "algorithm not accepted")) {
            try await verifier.verify(forged)
        }
    }

    @Test("ES256 with a PEM public key")
    func es256() async throws {
        let privateKey = ES256PrivateKey()
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: privateKey)
        let verifier = try await TokenVerifier(
            configuration: .init(publicKeyPEM: privateKey.publicKey.pemRepresentation))
        #expect(try await verifier.verify(try await signer.sign(Self.claims())).userID == "alice")
        let other = JWTKeyCollection()
        await other.add(ecdsa: ES256PrivateKey())
        await #expect(throws: TokenError.self) { try await verifier.verify(try await other.sign(Self.claims())) }
    }

    @Test("missing and malformed tokens")
    func missing() async throws {
        let verifier = try await TokenVerifier(configuration: .init(hmacSecret: Self.secret))
        await #expect(throws: TokenError.missing) { try await verifier.verify(nil) }
        await #expect(throws: TokenError.missing) { try await verifier.verify("") }
        await #expect(throws: TokenError.self) { try await verifier.verify("a.b.c") }
        #expect(TokenError.missing.clientMessage == "Authentication required")
        #expect(TokenError.invalid(reason: "x").clientMessage == "Invalid or expired token")
    }
}

@Suite("Verified tokens remembered")
struct VerifiedTokensTests {
    static let alice = Principal(userID: "alice", roles: ["service"])

    @Test("a verified token is served until it expires, a minute at most, and never by a look-alike spelling")
    func lifetime() {
        let tokens = VerifiedTokens()
        let now: Int64 = 1_000_000_000_000
        tokens.remember("header.K-claims.sig", principal: Self.alice, expiresMicros: now + 5_000_000, nowMicros: now)
        #expect(tokens.principal(for: "header.K-claims.sig", nowMicros: now + 4_999_999) == Self.alice)
        #expect(tokens.principal(for: "header.K-claims.sig", nowMicros: now + 5_000_000) == nil)
        // U+212A KELVIN SIGN equals "K" as a Swift String; as a token it is another token.
        tokens.remember("header.K-claims.sig", principal: Self.alice, expiresMicros: now + 5_000_000, nowMicros: now)
        #expect(tokens.principal(for: "header.\u{212A}-claims.sig", nowMicros: now) == nil)
        // A long-lived token is checked afresh after a minute.
        tokens.remember("long", principal: Self.alice, expiresMicros: now + 86_400_000_000, nowMicros: now)
        #expect(tokens.principal(for: "long", nowMicros: now + VerifiedTokens.maxAgeMicros - 1) == Self.alice)
        #expect(tokens.principal(for: "long", nowMicros: now + VerifiedTokens.maxAgeMicros) == nil)
        // Already expired: not remembered at all.
        tokens.remember("stale", principal: Self.alice, expiresMicros: now, nowMicros: now)
        #expect(tokens.principal(for: "stale", nowMicros: now) == nil)
    }

    @Test("the memory is bounded: when full it starts again, and oversized tokens are not kept")
    func bounded() {
        let tokens = VerifiedTokens()
        let now: Int64 = 1_000_000_000_000
        for index in 0..<VerifiedTokens.capacity {
            tokens.remember("t\(index)", principal: Self.alice, expiresMicros: now + 10_000_000, nowMicros: now)
        }
        #expect(tokens.principal(for: "t0", nowMicros: now) == Self.alice)
        tokens.remember("one-more", principal: Self.alice, expiresMicros: now + 10_000_000, nowMicros: now)
        #expect(tokens.principal(for: "t0", nowMicros: now) == nil)
        #expect(tokens.principal(for: "one-more", nowMicros: now) == Self.alice)
        let huge = String(repeating: "a", count: VerifiedTokens.maxTokenBytes + 1)
        tokens.remember(huge, principal: Self.alice, expiresMicros: now + 10_000_000, nowMicros: now)
        #expect(tokens.principal(for: huge, nowMicros: now) == nil)
    }

    @Test("the verifier remembers what it verified, and refused tokens stay refused")
    func verifierUsesIt() async throws {
        let verifier = try await TokenVerifier(
            configuration: .init(hmacSecret: TokenVerifierTests.secret, leewaySeconds: 0))
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: TokenVerifierTests.secret), digestAlgorithm: .sha256)
        let token = try await keys.sign(TokenVerifierTests.claims(exp: 600))
        #expect(verifier.recentlyVerified(token) == nil)
        let principal = try await verifier.verify(token)
        #expect(verifier.recentlyVerified(token) == principal)
        let expired = try await keys.sign(TokenVerifierTests.claims(exp: -5))
        for _ in 0..<2 {
            await #expect(throws: TokenError.self) { try await verifier.verify(expired) }
            #expect(verifier.recentlyVerified(expired) == nil)
        }
        // A token signed with another key is refused every time, cached or not.
        let other = JWTKeyCollection()
        await other.add(hmac: HMACKey(from: String(repeating: "x", count: 40)), digestAlgorithm: .sha256)
        let forged = try await other.sign(TokenVerifierTests.claims(exp: 600))
        await #expect(throws: TokenError.self) { try await verifier.verify(forged) }
        #expect(verifier.recentlyVerified(forged) == nil)
    }
}
