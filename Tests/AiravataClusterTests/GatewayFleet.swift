import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Synchronization

/// Real gateway processes whose Redis arguments each test chooses (Sentinels, a severable
/// link), logging to files a failing test shows. `ClusterHarness` always hands its nodes one
/// `--redis-url`; failover and partition tests need more.
final class GatewayFleet: Sendable {
    struct Node: Sendable {
        let name: String
        let port: Int
        let process: Process
        let log: URL
    }

    private let nodes = Mutex<[Node]>([])
    private let directory: URL
    let issuer: TokenIssuer

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        issuer = await TokenIssuer(hmacSecret: ClusterHarness.secret)
    }

    var count: Int { nodes.withLock { $0.count } }

    func node(_ index: Int) -> Node { nodes.withLock { $0[index] } }

    /// Starts a node with `redisArguments` (`--redis-url …` or `--redis-sentinels …`) and
    /// waits until it is ready.
    @discardableResult
    func launch(name: String, redisArguments: [String], extraArguments: [String] = []) async throws -> Int {
        let port = try freeLoopbackPort()
        let log = directory.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try gatewayBinary())
        process.arguments =
            [
                "serve", "--host", "127.0.0.1", "--port", "\(port)", "--node-id", name,
                "--drain-delay", "0", "--stats-interval", "0", "--log-level", "warning",
            ] + redisArguments + extraArguments
        process.environment = ProcessInfo.processInfo.environment.merging([
            "AIRAVATA_JWT_SECRET": ClusterHarness.secret
        ]) { $1 }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let index = nodes.withLock { nodes in
            nodes.append(Node(name: name, port: port, process: process, log: log))
            return nodes.count - 1
        }
        guard
            await eventually(
                within: .seconds(20),
                { await self.readiness(index) == 200 && processListens(pid: process.processIdentifier, port: port) })
        else {
            throw TestSupportError("node \(name) did not become ready within 20 s; \(logTail(index))")
        }
        return index
    }

    func http(_ index: Int) -> GatewayHTTPClient { GatewayHTTPClient(host: "127.0.0.1", port: node(index).port) }

    /// `/readyz`'s status, nil when the node does not answer.
    func readiness(_ index: Int) async -> Int? {
        try? await http(index).request(method: "GET", path: "/readyz").status
    }

    func token(_ user: String, projects: [String] = [], roles: [String] = []) async throws -> String {
        try await issuer.token(subject: user, projects: projects, roles: roles)
    }

    /// Posts `event` to node `index` and returns the status (0 when no answer came).
    func post(_ index: Int, _ event: JSONValue, token: String) async -> Int {
        (try? await http(index).publish(json: event.jsonString, token: token).status) ?? 0
    }

    /// SIGKILL: the node gets no chance to tidy up.
    func kill9(_ index: Int) {
        node(index).process.killAndAwaitEnd()
    }

    func logTail(_ index: Int, lines: Int = 15) -> String {
        let node = node(index)
        let text = (try? String(contentsOf: node.log, encoding: .utf8)) ?? ""
        return "\(node.name) log:\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    func logs() -> String { (0..<count).map { logTail($0) }.joined(separator: "\n") }

    func stop() {
        let running = nodes.withLock { $0 }.filter { $0.process.isRunning }
        for node in running { node.process.terminate() }
        for node in running { _ = try? node.process.blockingExitStatus(within: ClusterHarness.exitBound) }
        try? FileManager.default.removeItem(at: directory)
    }
}
