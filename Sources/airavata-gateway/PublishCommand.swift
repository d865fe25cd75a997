import AiravataClient
import AiravataCore
import AiravataProtocol
import ArgumentParser
import Foundation

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Send events to a gateway's ingestion API (POST /api/v1/events).",
        discussion: """
            Either --type with --data builds one event, or --file reads a JSON event or array of \
            events ('-' for standard input). A service token comes from --token, or is minted \
            from --secret / AIRAVATA_JWT_SECRET, with the issuer and audience a gateway started with \
            --jwt-issuer / --jwt-audience requires (--issuer / --audience, or the same environment variables).
            """
    )

    @Option(help: "The gateway's base URL.")
    var url: String = "http://127.0.0.1:8080"
    @Option(help: "A bearer token with the service role.")
    var token: String?
    @Option(help: "Secret to mint a short-lived service token with, when --token is absent [AIRAVATA_JWT_SECRET].")
    var secret: String?
    @Option(help: "Issuer (iss) of a minted token [AIRAVATA_JWT_ISSUER].")
    var issuer: String?
    @Option(help: "Audience (aud) of a minted token [AIRAVATA_JWT_AUDIENCE].")
    var audience: String?
    @Option(help: "Event type, e.g. experiment_updated.")
    var type: String?
    @Option(help: "The event's data object as JSON.")
    var data: String?
    @Option(help: "A file holding an event or an array of events; '-' reads standard input.")
    var file: String?

    func run() async throws {
        let body = try eventsJSON()
        let bearer = try await serviceToken()
        let response = try await GatewayHTTPClient(url: url).publish(json: body, token: bearer)
        print(response.bodyString.trimmingCharacters(in: .whitespacesAndNewlines))
        guard (200..<300).contains(response.status) else {
            throw ExitCode(1)
        }
    }

    private func eventsJSON() throws -> String {
        if let file {
            guard type == nil, data == nil else { throw ValidationError("use either --file or --type/--data") }
            let handle = file == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: file)
            guard let handle, let text = String(data: handle.readDataToEndOfFile(), encoding: .utf8) else {
                throw ValidationError("--file: cannot read '\(file)'")
            }
            return text
        }
        guard let type else { throw ValidationError("give --type and --data, or --file") }
        let payload: JSONValue
        do {
            payload = try JSONValue(parsing: data ?? "{}")
        } catch {
            throw ValidationError("--data is not valid JSON: \(error)")
        }
        return JSONValue.object(["type": .string(type), "data": payload]).jsonString
    }

    private func serviceToken() async throws -> String {
        if let token { return token }
        guard let secret = SettingValue(flag: "jwt-secret", value: secret).string() else {
            throw ValidationError("give --token, or --secret / AIRAVATA_JWT_SECRET to mint one")
        }
        return try await TokenIssuer(hmacSecret: secret).token(
            subject: "cli-publisher",
            roles: ["service"],
            issuer: SettingValue(flag: "jwt-issuer", value: issuer).string(),
            audience: SettingValue(flag: "jwt-audience", value: audience).string(),
            lifetime: 300
        )
    }
}
