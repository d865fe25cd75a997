import AiravataCore
import Foundation

/// What `serve --dev` prints: enough to see an event arrive within a minute.
enum DevBanner {
    static func print(secret: String, host: String, port: Int) async throws {
        let issuer = await TokenIssuer(hmacSecret: secret)
        let user = try await issuer.token(subject: "dev-user", projects: ["demo-project"], lifetime: 86_400)
        let service = try await issuer.token(subject: "dev-producer", roles: ["service"], lifetime: 86_400)
        let address = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
        // As this process was started: `swift run` does not put `airavata-gateway` on PATH.
        let command = CommandLine.arguments.first ?? "airavata-gateway"
        let text = """

            ── Airavata gateway, development mode ─────────────────────────────────────
            JWT secret (HS256):   \(secret)
              restart with the same secret:  \(command) serve --dev --jwt-secret \(secret)
            User token  (sub dev-user, project demo-project, 24 h):
              \(user)
            Service token (role service, may publish, 24 h):
              \(service)

            1. Listen (Node 20+):
              node --experimental-websocket -e 'const ws = new WebSocket("ws://\(address):\(port)/ws/projects/demo-project?token=\(user)"); ws.onmessage = (e) => console.log(e.data)'

            2. Publish (in another terminal):
              curl -s -X POST http://\(address):\(port)/api/v1/events \\
                -H 'Authorization: Bearer \(service)' -H 'Content-Type: application/json' \\
                -d '{"type":"experiment_updated","data":{"experiment":{"id":"exp-1","name":"Demo","status":"RUNNING","ownerId":"dev-user","projectId":"demo-project"}}}'
              or: \(command) publish --url http://\(address):\(port) --token '\(service)' \\
                    --type experiment_updated --data '{"experiment":{"id":"exp-1","status":"RUNNING","ownerId":"dev-user","projectId":"demo-project"}}'
            ────────────────────────────────────────────────────────────────────────────

            """
        Swift.print(text)
        FileHandle.standardOutput.write(Data())  // print buffers when stdout is a file
        fflush(nil)
    }
}
