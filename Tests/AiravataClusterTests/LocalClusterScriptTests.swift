import AiravataClient
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// `cluster/start.sh` brings up Redis, three nodes and HAProxy in one command, and a
/// plain protocol client works through HAProxy.
@Suite("Local cluster scripts behind HAProxy", .serialized)
struct LocalClusterScriptTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func run(_ script: String, _ arguments: [String], environment: [String: String]) async throws -> (
        Int32, String
    ) {
        try await offloaded { try runBlocking(script, arguments, environment: environment) }
    }

    static func runBlocking(_ script: String, _ arguments: [String], environment: [String: String]) throws -> (
        Int32, String
    ) {
        try runCommand(["bash", root.appendingPathComponent(script).path] + arguments, environment: environment)
    }

    static func runCommand(_ command: [String], environment: [String: String]) throws -> (Int32, String) {
        try runScript(command, environment: environment)
    }

    @Test("start.sh, a spec-style client through HAProxy, stop.sh")
    func clusterThroughHAProxy() async throws {
        let runDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-\(UUID().uuidString)")
        // start.sh numbers the node ports from the base: all three must be free.
        let base = try freeConsecutiveLoopbackPorts(3)
        let frontPort = try freeLoopbackPort()
        let redisPort = try freeLoopbackPort()
        let environment = [
            "RUN_DIR": runDirectory.path, "FRONT_PORT": "\(frontPort)", "NODE_BASE_PORT": "\(base)",
            "REDIS_PORT": "\(redisPort)", "BIN": try ClusterHarness.binary(),
            "AIRAVATA_JWT_SECRET": ClusterHarness.secret,
        ]
        let (status, output) = try await Self.run("cluster/start.sh", ["3"], environment: environment)
        defer {
            // Idempotent; a no-op after the test's own stop. Blocking is fine at the very end.
            _ = try? Self.runBlocking("cluster/stop.sh", [], environment: environment)
            try? FileManager.default.removeItem(at: runDirectory)
        }
        try #require(status == 0, "start.sh failed:\n\(output)")
        #expect(output.contains("cluster up: 3 nodes"))

        let node = try #require(ProcessRunner.which("node"), "node (20.10+) is needed for this test")
        let token = try String(contentsOf: runDirectory.appendingPathComponent("user.token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let client = try ProcessRunner(
            executable: node,
            arguments: [
                "--experimental-websocket", Self.root.appendingPathComponent("clients/js/basic-client.mjs").path,
                "--url", "ws://127.0.0.1:\(frontPort)", "--token", token, "--experiment", "exp-1", "--count", "1",
            ]
        )
        defer { client.terminate() }
        let subscribed = try await client.nextJSONLine()
        #expect(subscribed["kind"]?.stringValue == "subscribed", "got \(subscribed.jsonString)")

        let service = try String(contentsOf: runDirectory.appendingPathComponent("service.token"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let event =
            #"{"type":"experiment_updated","data":{"experiment":{"id":"exp-1","ownerId":"demo-user","projectId":"demo-project"}}}"#
        let response = try await GatewayHTTPClient(host: "127.0.0.1", port: frontPort).publish(
            json: event, token: service)
        #expect(response.status == 202)
        let delivered = try await client.nextJSONLine()
        #expect(delivered["message"]?["type"]?.stringValue == "experiment_updated")

        // What stop.sh must end: every process start.sh left, and every port they listened on.
        var pids: [String: Int32] = [:]
        for name in ["redis", "haproxy", "node-1", "node-2", "node-3"] {
            let file = runDirectory.appendingPathComponent("\(name).pid")
            let text = try String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let pid = try #require(Int32(text), "\(name).pid holds \(text)")
            pids[name] = pid
        }
        let ports = ["HAProxy": frontPort, "Redis": redisPort, "node-1": base, "node-2": base + 1, "node-3": base + 2]
        for (name, pid) in pids.sorted(by: { $0.key < $1.key }) {
            #expect(!hasEnded(pid: pid), "\(name) (pid \(pid)) should be running before stop.sh")
        }
        for (name, port) in ports.sorted(by: { $0.key < $1.key }) {
            #expect(isListeningLoopbackPort(port), "\(name) should listen on port \(port) before stop.sh")
        }

        let (stopStatus, stopOutput) = try await Self.run("cluster/stop.sh", [], environment: environment)
        #expect(stopStatus == 0, "stop.sh failed:\n\(stopOutput)")
        // An orphan is reaped by init a moment after it exits; allow that moment.
        let ended = await eventually { pids.values.allSatisfy { hasEnded(pid: $0) } }
        let running = pids.filter { !hasEnded(pid: $0.value) }.map { "\($0.key) (pid \($0.value))" }.sorted()
        #expect(ended, "still running after stop.sh: \(running)")
        let open = ports.filter { isListeningLoopbackPort($0.value) }.map { "\($0.key) on \($0.value)" }.sorted()
        #expect(open.isEmpty, "still accepting connections after stop.sh: \(open)")
        let pidFiles = try FileManager.default.contentsOfDirectory(atPath: runDirectory.path).filter {
            $0.hasSuffix(".pid")
        }
        #expect(pidFiles.isEmpty, "stop.sh left pid files: \(pidFiles)")
    }
}
