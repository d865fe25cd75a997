import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Synchronization
import Testing

/// A real Redis and N real gateway processes on loopback ports.
final class ClusterHarness: Sendable {
    static let secret = "cluster-test-secret-that-is-long-enough-0123456789"

    struct Node: Sendable {
        let name: String
        let port: Int
        let process: Process
        let log: URL
    }

    let redis: RedisServerProcess
    private let nodes: Mutex<[Node]>
    private let arguments: [String]
    /// Where the nodes write their logs, one file each, shown when a node fails to start.
    private let logDirectory: URL
    let issuer: TokenIssuer

    private init(redis: RedisServerProcess, arguments: [String], issuer: TokenIssuer) throws {
        self.redis = redis
        self.nodes = Mutex([])
        self.arguments = arguments
        self.issuer = issuer
        logDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: logDirectory, withIntermediateDirectories: true)
    }

    static func binary() throws -> String {
        try gatewayBinary()
    }

    /// Starts Redis and `count` nodes with the extra `serve` arguments, and waits until
    /// every node is ready.
    static func start(
        nodes count: Int = 3, arguments: [String] = [], perNode: [[String]] = []
    ) async throws -> ClusterHarness {
        let redis = try await RedisServerProcess.start()
        let harness = try ClusterHarness(
            redis: redis,
            arguments: arguments,
            issuer: await TokenIssuer(hmacSecret: secret)
        )
        for index in 0..<count {
            try harness.launch(name: "n\(index + 1)", extraArguments: index < perNode.count ? perNode[index] : [])
        }
        for index in 0..<count {
            let process = harness.node(index).process
            // A node that exited will not become ready: stop waiting and show why.
            let ready = await eventually(within: .seconds(20)) {
                guard process.isRunning else { return true }
                return await harness.isReady(index) && harness.ownsPort(index)
            }
            guard ready, process.isRunning else {
                let node = harness.node(index)
                let state = process.isRunning ? "within 20 s" : "(it exited with status \(process.terminationStatus))"
                let log = harness.logTail(index)
                await harness.shutdown()
                throw TestSupportError(
                    "node \(node.name) on port \(node.port) did not become ready \(state); \(log)")
            }
        }
        return harness
    }

    /// - Parameter extraArguments: this node's own `serve` arguments, after the cluster's.
    @discardableResult
    func launch(name: String, extraArguments: [String] = []) throws -> Int {
        let port = try freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments =
            [
                "serve", "--host", "127.0.0.1", "--port", "\(port)", "--node-id", name, "--redis-url", redis.url,
                "--drain-delay", "0", "--stats-interval", "0", "--log-level", "warning",
            ] + arguments + extraArguments
        process.environment = ProcessInfo.processInfo.environment.merging(["AIRAVATA_JWT_SECRET": Self.secret]) { $1 }
        let log = logDirectory.appendingPathComponent("\(name)-\(port).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return nodes.withLock { nodes in
            nodes.append(Node(name: name, port: port, process: process, log: log))
            return nodes.count - 1
        }
    }

    /// The last `lines` lines node `index` logged (warnings and errors: the harness runs
    /// nodes at `--log-level warning`).
    func logTail(_ index: Int, lines: Int = 15) -> String {
        let node = node(index)
        let text = (try? String(contentsOf: node.log, encoding: .utf8)) ?? ""
        return "its log:\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    func node(_ index: Int) -> Node { nodes.withLock { $0[index] } }

    /// Whether node `index`'s process, not another test's, listens on its port.
    func ownsPort(_ index: Int) -> Bool {
        let node = node(index)
        return processListens(pid: node.process.processIdentifier, port: node.port)
    }

    func http(_ index: Int) -> GatewayHTTPClient { GatewayHTTPClient(host: "127.0.0.1", port: node(index).port) }

    func isReady(_ index: Int) async -> Bool {
        (try? await http(index).request(method: "GET", path: "/readyz").status) == 200
    }

    func readiness(_ index: Int) async -> Int? {
        try? await http(index).request(method: "GET", path: "/readyz").status
    }

    func token(_ user: String, projects: [String] = [], roles: [String] = []) async throws -> String {
        try await issuer.token(subject: user, projects: projects, roles: roles)
    }

    /// Connects to node `index` and waits until admitted (a ping is answered).
    func connect(
        _ index: Int,
        _ path: String,
        user: String,
        projects: [String] = [],
        roles: [String] = []
    ) async throws -> RawWebSocket {
        let token = try await token(user, projects: projects, roles: roles)
        let socket = try await RawWebSocket.connect(port: node(index).port, path: "\(path)?token=\(token)")
        try await socket.send(.object(["type": .string("ping")]))
        _ = try await socket.nextMessage(ofType: "pong")
        return socket
    }

    @discardableResult
    func publish(_ index: Int, _ events: JSONValue) async throws -> JSONValue {
        let service = try await token("producer", roles: ["service"])
        let response = try await http(index).publish(json: events.jsonString, token: service)
        guard response.status == 202 else {
            throw TestSupportError("publish to node \(index) answered \(response.status): \(response.bodyString)")
        }
        return try JSONValue(parsing: response.bodyString)
    }

    func stats(_ index: Int) async throws -> JSONValue {
        try JSONValue(parsing: try await http(index).request(method: "GET", path: "/api/v1/stats").bodyString)
    }

    /// SIGKILL: the node gets no chance to tidy up.
    func kill9(_ index: Int) {
        node(index).process.killAndAwaitEnd()
    }

    /// How long a node may take to drain and exit after SIGTERM: the harness runs nodes with
    /// no drain delay, so only the drain timeout's worth of closing remains.
    static let exitBound: Duration = .seconds(40)

    /// SIGTERM, as Kubernetes sends it; returns the exit status once the node has drained and
    /// exited. A node still running after `exitBound` is killed and fails the test (nil).
    @discardableResult
    func terminate(_ index: Int) async -> Int32? {
        let process = node(index).process
        process.terminate()
        do {
            return try await process.exitStatus(within: Self.exitBound)
        } catch {
            Issue.record("node \(node(index).name) did not exit after SIGTERM: \(error)")
            return nil
        }
    }

    /// SIGTERM to every node at once, then waits for them all to drain and exit without holding
    /// a thread: the cooperative pool has two here, and a teardown that slept on one for the
    /// nodes' drains stalled every other test's clients until their servers called them dead.
    func shutdown() async {
        let running = nodes.withLock { $0 }.filter { $0.process.isRunning }
        for node in running { node.process.terminate() }
        for node in running { _ = try? await node.process.exitStatus(within: Self.exitBound) }
        redis.stop()
        try? FileManager.default.removeItem(at: logDirectory)
    }

    static func with<T>(
        nodes count: Int = 3,
        arguments: [String] = [],
        perNode: [[String]] = [],
        _ body: (ClusterHarness) async throws -> T
    ) async throws -> T {
        let harness = try await start(nodes: count, arguments: arguments, perNode: perNode)
        do {
            let result = try await body(harness)
            await harness.shutdown()
            return result
        } catch {
            await harness.shutdown()
            throw error
        }
    }
}

enum ClusterEvents {
    static func experiment(_ type: String = "experiment_updated", id: String, project: String, owner: String)
        -> JSONValue
    {
        .object([
            "type": .string(type),
            "data": .object([
                "experiment": .object([
                    "id": .string(id), "status": .string("RUNNING"), "ownerId": .string(owner),
                    "projectId": .string(project),
                ])
            ]),
        ])
    }

    static func task(id: String, experiment: String) -> JSONValue {
        .object([
            "type": .string("task_updated"),
            "data": .object(["task": .object(["id": .string(id), "experimentId": .string(experiment)])]),
        ])
    }

    static func worker(id: String) -> JSONValue {
        .object(["type": .string("worker_updated"), "data": .object(["worker": .object(["id": .string(id)])])])
    }

    static func system(_ note: String) -> JSONValue {
        .object(["type": .string("system_status"), "data": .object(["notice": .string(note)])])
    }

    static func progress(experiment: String, sequence: Int) -> JSONValue {
        .object([
            "type": .string("experiment_progress"),
            "data": .object(["experimentId": .string(experiment), "completedTasks": .integer(sequence)]),
        ])
    }
}
