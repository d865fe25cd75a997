import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Foundation
import Testing

/// The real `airavata-gateway` binary as a process: flags, environment, errors, SIGTERM.
@Suite("Command line and process lifecycle")
struct CommandLineTests {
    static func binary() throws -> String {
        try gatewayBinary()
    }

    /// Runs the binary to completion; returns exit status and combined output.
    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (Int32, String) {
        try await runToCompletion(try binary(), arguments, environment: environment)
    }

    static func freePort() throws -> Int {
        try freeLoopbackPort()
    }

    @Test("--help names every flag of the design and its environment variable")
    func help() async throws {
        let (status, output) = try await Self.run(["serve", "--help"])
        #expect(status == 0)
        for flag in [
            "--host", "--port", "--redis-url", "--jwt-secret", "--jwt-public-key", "--jwks", "--jwt-issuer",
            "--jwt-audience", "--node-id", "--max-connections-per-user", "--max-connections-per-ip",
            "--max-connections", "--ping-interval", "--stats-interval", "--max-frame-size", "--rate-limit",
            "--max-subscriptions", "--trusted-proxies", "--drain-delay", "--drain-timeout", "--dev", "--tcp-nodelay",
            "--direct-writes",
        ] {
            #expect(output.contains(flag), "missing \(flag)")
        }
        #expect(output.contains("AIRAVATA_JWT_SECRET"))
    }

    /// A node started with `--tcp-nodelay <setting>` (none: the default), ready, and an issuer
    /// of its tokens.
    static func noDelayNode(_ setting: String?) async throws -> (GatewayProcess, TokenIssuer) {
        let secret = "tcp-nodelay-test-secret-that-is-long-enough-0123"
        let node = try GatewayProcess.start(
            arguments: (setting.map { ["--tcp-nodelay", $0] } ?? [])
                + ["--stats-interval", "0", "--drain-delay", "0", "--log-level", "warning"],
            environment: ["AIRAVATA_JWT_SECRET": secret])
        do {
            try await node.waitFor("/healthz", toAnswer: 200)
        } catch {
            node.stop()
            throw error
        }
        return (node, await TokenIssuer(hmacSecret: secret))
    }

    @Test("--tcp-nodelay false: small frames sent back to back still all arrive, in order")
    func nagle() async throws {
        let (node, issuer) = try await Self.noDelayNode("false")
        defer { node.stop() }
        let socket = try await node.connect("/ws/user", token: try await issuer.token(subject: "alice"))
        defer { socket.close() }
        let notes = (1...20).map { sequence in
            JSONValue.object([
                "type": .string("user_notification"),
                "data": .object([
                    "userId": .string("alice"), "title": .string("note \(sequence)"), "level": .string("info"),
                ]),
            ])
        }
        // One request: the events leave the node together, the case Nagle joins into segments.
        try await node.publish(.array(notes), token: try await issuer.token(subject: "producer", roles: ["service"]))
        for sequence in 1...20 {
            let delivered = try await socket.nextMessage(ofType: "user_notification")
            #expect(delivered["data"]?["title"]?.stringValue == "note \(sequence)")
        }
    }

    /// Since the listener carries the setting (Linux copies it to accepted sockets), no
    /// code sets it per connection any more; this reads it from the node's own sockets.
    @Test(
        "client sockets have TCP_NODELAY by default and with auto or true, and not with false",
        arguments: [(nil, true), ("auto", true), ("true", true), ("false", false)] as [(String?, Bool)])
    func noDelayOnClientSockets(setting: String?, enabled: Bool) async throws {
        let (node, issuer) = try await Self.noDelayNode(setting)
        defer { node.stop() }
        let sockets = [
            try await node.connect("/ws/user", token: try await issuer.token(subject: "alice")),
            try await node.connect("/ws/user", token: try await issuer.token(subject: "bob")),
        ]
        defer { sockets.forEach { $0.close() } }
        let settings = try noDelaySettingsOfAcceptedSockets(pid: node.processID, port: node.port)
        #expect(settings == [enabled ? 1 : 0, enabled ? 1 : 0], "TCP_NODELAY of the node's client sockets")
    }

    @Test("several event loops: a listener each on one port, all serving; a second node on the port does not start")
    func listenerPerLoop() async throws {
        let secret = "listener-test-secret-that-is-long-enough-0123456"
        let node = try GatewayProcess.start(
            arguments: ["--threads", "3", "--stats-interval", "0", "--drain-delay", "0", "--log-level", "warning"],
            environment: ["AIRAVATA_JWT_SECRET": secret])
        defer { node.stop() }
        try await node.waitFor("/healthz", toAnswer: 200)
        #expect(try listeningSocketCount(pid: node.processID, port: node.port) == 3)
        let issuer = await TokenIssuer(hmacSecret: secret)
        // The kernel spreads connects over the listeners by address and port: twelve reach
        // more than one of them, and every one is admitted (`connect` waits for a pong).
        var sockets: [RawWebSocket] = []
        defer { sockets.forEach { $0.close() } }
        for user in 0..<12 {
            sockets.append(try await node.connect("/ws/user", token: try await issuer.token(subject: "user-\(user)")))
        }
        let second = try await Self.run(
            ["serve", "--dev", "--host", "127.0.0.1", "--port", "\(node.port)", "--threads", "2"])
        #expect(second.0 != 0, "a second node started on a port in use")
        #expect(second.1.contains("Address already in use"), "\(second.1)")
        #expect(try listeningSocketCount(pid: node.processID, port: node.port) == 3)
    }

    @Test("bad configuration stops the start with a message naming the setting")
    func badConfiguration() async throws {
        let weak = try await Self.run(["serve", "--jwt-secret", "short"])
        #expect(weak.0 != 0)
        #expect(weak.1.contains("HS256 needs at least 32"))
        let noKey = try await Self.run(["serve"])
        #expect(noKey.0 != 0)
        #expect(noKey.1.contains("no token key configured"))
        let badDuration = try await Self.run(
            ["serve", "--dev"],
            environment: ["AIRAVATA_PING_INTERVAL": "soon"]
        )
        #expect(badDuration.0 != 0)
        #expect(badDuration.1.contains("AIRAVATA_PING_INTERVAL"))
        let badNoDelay = try await Self.run(["serve", "--dev", "--tcp-nodelay", "maybe"])
        #expect(badNoDelay.0 != 0)
        #expect(
            badNoDelay.1.contains("--tcp-nodelay") && badNoDelay.1.contains("auto, true or false"), "\(badNoDelay.1)")
        let badNoDelayVariable = try await Self.run(["serve", "--dev"], environment: ["AIRAVATA_TCP_NODELAY": "2"])
        #expect(badNoDelayVariable.0 != 0)
        #expect(badNoDelayVariable.1.contains("AIRAVATA_TCP_NODELAY"))
        let badDirect = try await Self.run(["serve", "--dev"], environment: ["AIRAVATA_DIRECT_WRITES": "sometimes"])
        #expect(badDirect.0 != 0)
        #expect(
            badDirect.1.contains("AIRAVATA_DIRECT_WRITES") && badDirect.1.contains("true or false"), "\(badDirect.1)")
        let badPort = try await Self.run(["serve", "--dev", "--port", "99999"])
        #expect(badPort.0 != 0)
        #expect(badPort.1.contains("--port"))
        // A later bad setting stops a start that this check lets through, rather than leave it serving.
        let fewSessions = try await Self.run([
            "serve", "--dev", "--max-connections-per-user", "5", "--max-sessions-per-user", "2", "--log-level", "loud",
        ])
        #expect(fewSessions.0 != 0)
        #expect(
            fewSessions.1.contains("--max-sessions-per-user") && fewSessions.1.contains("--max-connections-per-user"),
            "expected a message naming both flags, got: \(fewSessions.1)")
    }

    @Test("token mints what serve accepts; SIGTERM drains: readiness off, reconnect notice, 1012")
    func tokenServeAndDrain() async throws {
        let secret = TestGateway.secret
        let (status, tokenOutput) = try await Self.run([
            "token", "--secret", secret, "--sub", "alice", "--project", "p-1",
        ])
        #expect(status == 0)
        let token = tokenOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try Self.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        // The drain's not-ready window must outlast a readiness probe on a loaded machine (1 s
        // did not, once, in a fresh-clone CI run).
        process.arguments = ["serve", "--host", "127.0.0.1", "--port", "\(port)", "--drain-delay", "3"]
        process.environment = ProcessInfo.processInfo.environment.merging(["AIRAVATA_JWT_SECRET": secret]) { $1 }
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let http = TestGatewayHTTP(port: port)
        #expect(await eventually(within: .seconds(20)) { (try? await http.status("/readyz")) == 200 })
        let socket = try await RawWebSocket.connect(port: port, path: "/ws/projects/p-1?token=\(token)")
        defer { socket.close() }
        try await socket.send(.object(["type": .string("ping")]))
        _ = try await socket.nextMessage(ofType: "pong")

        kill(process.processIdentifier, SIGTERM)
        #expect(await eventually { (try? await http.status("/readyz")) == 503 })
        let notice = try await socket.nextMessage(ofType: "system_status")
        #expect(notice["data"]?["action"]?.stringValue == "reconnect")
        let close = try await socket.expectClose()
        #expect(close.code == 1012)
        // Read only once it has exited: a hang fails here instead of trapping the whole run.
        #expect(try await process.exitStatus(within: .seconds(10)) == 0, "serve should exit 0 after draining")
    }
}

struct TestGatewayHTTP {
    let port: Int

    func status(_ path: String) async throws -> Int {
        try await GatewayHTTPClient(host: "127.0.0.1", port: port).request(method: "GET", path: path).status
    }
}
