import AiravataCore
import ArgumentParser

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint an HS256 token for development and tests.",
        discussion: "Prints the token alone on standard output, so that $(airavata-gateway token …) works."
    )

    @Option(help: "The secret the gateway verifies with [AIRAVATA_JWT_SECRET].")
    var secret: String?
    @Option(help: "User id (the sub claim).")
    var sub: String = "dev-user"
    @Option(name: .customLong("project"), help: "A project the user may see; repeat for several.")
    var projects: [String] = []
    @Option(name: .customLong("role"), help: "A role: admin (sees everything) or service (may publish); repeatable.")
    var roles: [String] = []
    @Option(help: "Lifetime, e.g. 3600, 15m, 24h.")
    var ttl: String = "1h"
    @Option(help: "Issuer (iss) to put in the token [AIRAVATA_JWT_ISSUER].")
    var issuer: String?
    @Option(help: "Audience (aud) to put in the token [AIRAVATA_JWT_AUDIENCE].")
    var audience: String?

    func run() async throws {
        guard let secret = SettingValue(flag: "jwt-secret", value: secret).string() else {
            throw ValidationError("a secret is required: --secret or AIRAVATA_JWT_SECRET")
        }
        guard secret.utf8.count >= TokenVerifierConfiguration.minimumSecretBytes else {
            throw ValidationError("the secret must be at least \(TokenVerifierConfiguration.minimumSecretBytes) bytes")
        }
        guard let lifetime = SettingValue.parseDuration(ttl), lifetime > 0 else {
            throw ValidationError("--ttl: expected a duration such as 3600, 15m or 24h, got '\(ttl)'")
        }
        let token = try await TokenIssuer(hmacSecret: secret).token(
            subject: sub,
            projects: projects,
            roles: roles,
            issuer: SettingValue(flag: "jwt-issuer", value: issuer).string(),
            audience: SettingValue(flag: "jwt-audience", value: audience).string(),
            lifetime: lifetime
        )
        print(token)
    }
}
