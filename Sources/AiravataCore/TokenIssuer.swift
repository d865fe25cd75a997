package import Foundation
import JWTKit

/// Mints HS256 tokens for development and tests (`airavata-gateway token`, `serve --dev`).
package struct TokenIssuer: Sendable {
    private let keys: JWTKeyCollection

    package init(hmacSecret: String) async {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: hmacSecret), digestAlgorithm: .sha256)
        self.keys = keys
    }

    package func token(
        subject: String,
        projects: [String] = [],
        roles: [String] = [],
        issuer: String? = nil,
        audience: String? = nil,
        lifetime: TimeInterval = 3600,
        now: Date = Date()
    ) async throws -> String {
        // Whole seconds: some JWT libraries refuse fractional NumericDates.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let claims = IssuedClaims(
            sub: subject,
            projects: projects.isEmpty ? nil : projects,
            roles: roles.isEmpty ? nil : roles,
            iat: IssuedAtClaim(value: now),
            exp: ExpirationClaim(value: now.addingTimeInterval(lifetime)),
            iss: issuer.map { IssuerClaim(value: $0) },
            aud: audience.map { AudienceClaim(value: [$0]) }
        )
        return try await keys.sign(claims)
    }
}

private struct IssuedClaims: JWTPayload {
    var sub: String
    var projects: [String]?
    var roles: [String]?
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var iss: IssuerClaim?
    var aud: AudienceClaim?

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
