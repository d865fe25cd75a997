import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Logging
import NIOCore
import NIOPosix

/// A real gateway node on a free loopback port, with helpers to mint tokens and publish.
final class TestGateway: Sendable {
    static let secret = "test-secret-that-is-long-enough-for-hs256-0123456789"

    let port: Int
    let gateway: Gateway
    private let task: Task<Void, any Error>
    let issuer: TokenIssuer

    private init(port: Int, gateway: Gateway, task: Task<Void, any Error>, issuer: TokenIssuer) {
        self.port = port
        self.gateway = gateway
        self.task = task
        self.issuer = issuer
    }

    static func start(
        server: ServerConfiguration = ServerConfiguration(),
        gateway configuration: GatewayConfiguration = GatewayConfiguration(
            nodeID: "test-node", statsIntervalSeconds: 0),
        token: TokenVerifierConfiguration = TokenVerifierConfiguration(hmacSecret: TestGateway.secret),
        replayLength: Int = 10_000
    ) async throws -> TestGateway {
        var server = server
        server.host = "127.0.0.1"
        server.port = 0
        var configuration = configuration
        configuration.replayMemory = min(configuration.replayMemory, replayLength)
        var logger = Logger(label: "test.gateway")
        logger.logLevel = .warning
        let gateway = Gateway(
            configuration: configuration,
            verifier: try await TokenVerifier(configuration: token),
            bus: EmbeddedEventBus(replayLength: replayLength),
            ownership: InMemoryOwnershipIndex(),
            limiter: InMemoryConnectionLimiter(limits: configuration.limits),
            frames: WebSocketTextFrames(),
            logger: logger
        )
        let node = GatewayServer(gateway: gateway, configuration: server, logger: logger)
        let task = Task { try await node.run() }
        let port = try await node.boundPort.get()
        return TestGateway(port: port, gateway: gateway, task: task, issuer: await TokenIssuer(hmacSecret: secret))
    }

    /// Runs `body` against a fresh node and always stops the node afterwards.
    static func with<T>(
        server: ServerConfiguration = ServerConfiguration(),
        gateway: GatewayConfiguration = GatewayConfiguration(nodeID: "test-node", statsIntervalSeconds: 0),
        replayLength: Int = 10_000,
        _ body: (TestGateway) async throws -> T
    ) async throws -> T {
        let node = try await start(server: server, gateway: gateway, replayLength: replayLength)
        do {
            let result = try await body(node)
            await node.stop()
            return result
        } catch {
            await node.stop()
            throw error
        }
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    func token(_ user: String, projects: [String] = [], roles: [String] = []) async throws -> String {
        try await issuer.token(subject: user, projects: projects, roles: roles)
    }

    /// Connects with the token in the query string and waits until the node admitted it
    /// (a `ping` answered proves the admission finished).
    func connect(
        _ path: String,
        user: String,
        projects: [String] = [],
        roles: [String] = [],
        answerPings: Bool = true
    ) async throws -> RawWebSocket {
        let token = try await token(user, projects: projects, roles: roles)
        let separator = path.contains("?") ? "&" : "?"
        let socket = try await RawWebSocket.connect(
            port: port, path: "\(path)\(separator)token=\(token)", answerPings: answerPings)
        try await socket.send(.object(["type": .string("ping"), "id": .string("ready")]))
        _ = try await socket.nextMessage(ofType: "pong")
        return socket
    }

    func subscribe(_ socket: RawWebSocket, _ resourceType: String, _ resourceID: String?) async throws -> JSONValue {
        var data: JSONObject = ["action": .string("subscribe"), "resourceType": .string(resourceType)]
        if let resourceID { data["resourceId"] = .string(resourceID) }
        try await socket.send(.object(["type": .string("system_status"), "data": .object(data)]))
        while true {
            let reply = try await socket.nextMessage()
            if reply["type"]?.stringValue == "error" { return reply }
            if reply["data"]?["action"]?.stringValue == "subscribed" { return reply }
        }
    }

    var http: GatewayHTTPClient { GatewayHTTPClient(host: "127.0.0.1", port: port) }

    func serviceToken() async throws -> String {
        try await token("producer", roles: ["service"])
    }

    /// Publishes and requires a 202.
    @discardableResult
    func publish(_ events: JSONValue) async throws -> JSONValue {
        let response = try await http.publish(json: events.jsonString, token: try await serviceToken())
        guard response.status == 202 else {
            throw RawWebSocket.Failure(description: "publish answered \(response.status): \(response.bodyString)")
        }
        return try JSONValue(parsing: response.bodyString)
    }
}

/// Builders for the spec's event shapes, with our own values.
enum Events {
    static func experiment(
        _ type: String = "experiment_updated",
        id: String,
        project: String,
        owner: String,
        status: String = "RUNNING",
        name: String = "Sweep"
    ) -> JSONValue {
        let fields: JSONObject = [
            "id": .string(id), "name": .string(name), "status": .string(status),
            "ownerId": .string(owner), "projectId": .string(project),
        ]
        var summary = fields
        summary["projectId"] = nil
        return .object([
            "type": .string(type), "data": .object(["experiment": .object(fields), "summary": .object(summary)]),
        ])
    }

    static func task(_ type: String = "task_updated", id: String, experiment: String, status: String = "RUNNING")
        -> JSONValue
    {
        let fields: JSONObject = [
            "id": .string(id), "experimentId": .string(experiment), "status": .string(status),
            "command": .string("run.sh --n 4"), "workerId": .string("wrk-1"),
        ]
        var summary = fields
        summary["command"] = nil
        return .object([
            "type": .string(type), "data": .object(["task": .object(fields), "summary": .object(summary)]),
        ])
    }

    static func worker(_ type: String = "worker_updated", id: String) -> JSONValue {
        let fields: JSONObject = [
            "id": .string(id), "computeResourceId": .string("cr-9"), "experimentId": .string("exp-w"),
            "status": .string("RUNNING"), "currentTaskId": .null,
        ]
        var summary = fields
        summary["currentTaskId"] = nil
        return .object([
            "type": .string(type), "data": .object(["worker": .object(fields), "summary": .object(summary)]),
        ])
    }

    static func system(note: String) -> JSONValue {
        .object(["type": .string("system_status"), "data": .object(["notice": .string(note)])])
    }

    static func notification(user: String, title: String) -> JSONValue {
        .object([
            "type": .string("user_notification"),
            "data": .object(["userId": .string(user), "title": .string(title), "level": .string("info")]),
        ])
    }
}
