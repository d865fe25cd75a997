import JWTKit

/// The claims we read. Both our own tokens (`sub`, `projects`, `roles`) and the
/// Airavata scheduler's (`user_id`, `is_admin`) are understood.
struct TokenClaims: JWTPayload {
    var sub: String?
    var userID: String?
    var projects: [String]?
    var roles: [String]?
    var isAdmin: Bool?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?

    enum CodingKeys: String, CodingKey {
        case sub
        case userID = "user_id"
        case projects
        case roles
        case isAdmin = "is_admin"
        case exp
        case nbf
        case iat
        case iss
        case aud
    }

    /// Time claims are checked by `TokenVerifier`, which knows the leeway.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
