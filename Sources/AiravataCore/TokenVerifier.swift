import AiravataProtocol
import Foundation
import JWTKit

/// Checks JWTs and turns them into a `Principal`.
package struct TokenVerifier: Sendable {
    private let keys: JWTKeyCollection
    private let acceptedAlgorithms: Set<String>
    /// With a JWKS, the `kid`s it lists: a token must name one. Without this, JWTKit falls
    /// back to the set's first key for a `kid` it does not hold (or none), so a retired or
    /// misspelled `kid` was accepted whenever that key had signed.
    private let keyIDs: Set<ExactString>?
    private let configuration: TokenVerifierConfiguration
    private let verified = VerifiedTokens()

    package init(configuration: TokenVerifierConfiguration) async throws {
        self.configuration = configuration
        let keys = JWTKeyCollection()
        var keyIDs: Set<ExactString>?
        let sources = [configuration.hmacSecret, configuration.publicKeyPEM, configuration.jwksJSON].compactMap { $0 }
        guard sources.count == 1 else {
            throw TokenConfigurationError(
                sources.isEmpty
                    ? "no token key configured: set --jwt-secret (HS256), --jwt-public-key (RS256/ES256) or --jwks"
                    : "configure only one of --jwt-secret, --jwt-public-key and --jwks"
            )
        }
        if let secret = configuration.hmacSecret {
            guard secret.utf8.count >= TokenVerifierConfiguration.minimumSecretBytes else {
                throw TokenConfigurationError(
                    "the JWT secret is \(secret.utf8.count) bytes; HS256 needs at least "
                        + "\(TokenVerifierConfiguration.minimumSecretBytes) (try: openssl rand -hex 32)"
                )
            }
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            acceptedAlgorithms = ["HS256"]
        } else if let pem = configuration.publicKeyPEM {
            if let rsa = try? Insecure.RSA.PublicKey(pem: pem) {
                await keys.add(rsa: rsa, digestAlgorithm: .sha256)
                acceptedAlgorithms = ["RS256"]
            } else if let ec = try? ES256PublicKey(pem: pem) {
                await keys.add(ecdsa: ec)
                acceptedAlgorithms = ["ES256"]
            } else {
                throw TokenConfigurationError("the JWT public key is neither an RSA nor a P-256 PEM public key")
            }
        } else if let jwks = configuration.jwksJSON {
            let listed: [JWK]
            do {
                listed = try JSONDecoder().decode(JWKS.self, from: Data(jwks.utf8)).keys
            } catch {
                throw TokenConfigurationError("the JWKS document could not be read: \(error)")
            }
            let ids = listed.compactMap { $0.keyIdentifier.map { ExactString($0.string) } }
            guard ids.count == listed.count, Set(ids).count == ids.count else {
                throw TokenConfigurationError(
                    "every key in the JWKS needs a kid of its own (tokens choose their key by it); "
                        + "for a single key without one, use --jwt-public-key")
            }
            keyIDs = Set(ids)
            do {
                try await keys.add(jwksJSON: jwks)
            } catch {
                throw TokenConfigurationError("the JWKS document could not be read: \(error)")
            }
            acceptedAlgorithms = ["RS256", "ES256"]
        } else {
            acceptedAlgorithms = []
        }
        self.keys = keys
        self.keyIDs = keyIDs
    }

    /// The principal of a token verified recently and still valid, without a task or a
    /// signature check; nil when the token must go through `verify`.
    package func recentlyVerified(_ token: String) -> Principal? {
        recentlyVerified(token, nowMicros: Int64(Date().timeIntervalSince1970 * 1_000_000))?.principal
    }

    /// `recentlyVerified`, with until when (wall-clock microseconds) the token may be trusted
    /// again without asking: whoever keeps the answer must ask again after that.
    package func recentlyVerified(_ token: String, nowMicros: Int64) -> (principal: Principal, untilMicros: Int64)? {
        verified.trusted(token, nowMicros: nowMicros)
    }

    package func verify(_ token: String?) async throws(TokenError) -> Principal {
        guard let token, !token.isEmpty else { throw .missing }
        let now = Date()
        let nowMicros = Int64(now.timeIntervalSince1970 * 1_000_000)
        if let principal = verified.principal(for: token, nowMicros: nowMicros) { return principal }
        // The header's algorithm must be one we configured: this refuses `none` and
        // HS/RS confusion before any key is touched.
        let header = Self.header(of: token)
        guard let algorithm = header?["alg"] as? String, acceptedAlgorithms.contains(algorithm) else {
            throw .invalid(reason: "algorithm not accepted")
        }
        if let keyIDs {
            guard let kid = header?["kid"] as? String, keyIDs.contains(ExactString(kid)) else {
                throw .invalid(reason: "no kid, or a kid the JWKS does not list")
            }
        }
        let claims: TokenClaims
        do {
            claims = try await keys.verify(token, as: TokenClaims.self)
        } catch {
            throw .invalid(reason: "signature or format: \(error)")
        }
        let principal = try principal(from: claims, now: now)
        if let exp = claims.exp {
            let expiresMicros = Int64((exp.value.timeIntervalSince1970 + configuration.leewaySeconds) * 1_000_000)
            verified.remember(token, principal: principal, expiresMicros: expiresMicros, nowMicros: nowMicros)
        }
        return principal
    }

    func principal(from claims: TokenClaims, now: Date) throws(TokenError) -> Principal {
        let leeway = configuration.leewaySeconds
        guard let exp = claims.exp else { throw .invalid(reason: "no exp claim") }
        guard exp.value.timeIntervalSince(now) > -leeway else { throw .invalid(reason: "expired") }
        if let nbf = claims.nbf, nbf.value.timeIntervalSince(now) > leeway {
            throw .invalid(reason: "not yet valid")
        }
        // A token from the future was minted with a wrong clock or forged to outlive its key.
        if let iat = claims.iat, iat.value.timeIntervalSince(now) > leeway {
            throw .invalid(reason: "issued in the future")
        }
        // Claims compare as bytes, without Unicode canonicalization (RFC 7519 §7.3).
        if let issuer = configuration.issuer, claims.iss?.value.hasSameBytes(as: issuer) != true {
            throw .invalid(reason: "issuer mismatch")
        }
        if let audience = configuration.audience,
            !(claims.aud?.value.contains { $0.hasSameBytes(as: audience) } ?? false)
        {
            throw .invalid(reason: "audience mismatch")
        }
        guard let userID = claims.sub ?? claims.userID, !userID.isEmpty else {
            throw .invalid(reason: "no sub or user_id claim")
        }
        guard Identifier.isValidUserID(userID) else { throw .invalid(reason: "user id \(Identifier.userIDRule)") }
        var roles = claims.roles ?? []
        if claims.isAdmin == true { roles.append(Principal.Role.admin.value) }
        return Principal(userID: userID, projects: claims.projects ?? [], roles: roles)
    }

    /// The header's `alg`, read before any key is touched (Fuzz/TokenHeader.swift fuzzes it).
    private static func headerAlgorithm(of token: String) -> String? {
        header(of: token)?["alg"] as? String
    }

    private static func header(of token: String) -> [String: Any]? {
        guard let headerPart = token.split(separator: ".", omittingEmptySubsequences: false).first else { return nil }
        var base64 = headerPart.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64),
            let header = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return header
    }
}
