/// How tokens are checked. Exactly one key source must be set.
package struct TokenVerifierConfiguration: Sendable {
    /// HS256 shared secret; at least 32 bytes.
    package var hmacSecret: String?
    /// PEM public key (RSA for RS256, P-256 for ES256).
    package var publicKeyPEM: String?
    /// A JWKS document (RS256/ES256 keys selected by `kid`).
    package var jwksJSON: String?
    package var issuer: String?
    package var audience: String?
    /// Clock skew tolerated on `exp` and `nbf`.
    package var leewaySeconds: Double

    package init(
        hmacSecret: String? = nil,
        publicKeyPEM: String? = nil,
        jwksJSON: String? = nil,
        issuer: String? = nil,
        audience: String? = nil,
        leewaySeconds: Double = 30
    ) {
        self.hmacSecret = hmacSecret
        self.publicKeyPEM = publicKeyPEM
        self.jwksJSON = jwksJSON
        self.issuer = issuer
        self.audience = audience
        self.leewaySeconds = leewaySeconds
    }

    /// The shortest HMAC secret we accept: shorter keys are guessable, and jwt-kit traps on them.
    package static let minimumSecretBytes = 32
}
