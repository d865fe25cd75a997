import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Foundation
import Synchronization
import Testing

/// Our browser-style JavaScript client, run by Node against a real node.
@Suite("JavaScript client under Node")
struct JavaScriptClientTests {
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    @Test("connects with the token in the query, subscribes and receives events")
    func basicClient() async throws {
        let node = try #require(ProcessRunner.which("node"), "node (20.10+) is needed for this test")
        try await TestGateway.with { gateway in
            let token = try await gateway.token("u-1", projects: ["p-1"])
            let runner = try ProcessRunner(
                executable: node,
                arguments: [
                    "--experimental-websocket",
                    Self.repositoryRoot.appendingPathComponent("clients/js/basic-client.mjs").path,
                    "--url", "ws://127.0.0.1:\(gateway.port)", "--token", token, "--experiment", "exp-1", "--count",
                    "2",
                ]
            )
            defer { runner.terminate() }
            let subscribed = try await runner.nextJSONLine()
            #expect(subscribed["kind"]?.stringValue == "subscribed", "node printed: \(subscribed.jsonString)")
            try await gateway.publish(Events.experiment(id: "exp-1", project: "p-1", owner: "u-1"))
            try await gateway.publish(Events.task(id: "t-1", experiment: "exp-1"))
            let first = try await runner.nextJSONLine()
            let second = try await runner.nextJSONLine()
            #expect(first["message"]?["type"]?.stringValue == "experiment_updated")
            #expect(second["message"]?["type"]?.stringValue == "task_updated")
            let closed = try await runner.nextJSONLine()
            #expect(closed["kind"]?.stringValue == "close")
            #expect(try await runner.exitCode() == 0)
        }
    }

    @Test("the official client's own suite (reconnect, resume, bookkeeping, React hooks) passes under Node")
    func officialClientSuite() async throws {
        let node = try #require(ProcessRunner.which("node"), "node (20.10+) is needed for this test")
        // Test files by name: from Node 22, `node --test <directory>` no longer runs a directory.
        let tests = try Self.testFiles(in: "clients/js/test")
        try #require(tests.count >= 5, "expected the JS suite's test files, found \(tests)")
        let command = [node, "--experimental-websocket", "--test"] + tests
        let gateway = try gatewayBinary()
        let (status, output) = try await offloaded { try runScript(command, environment: ["GATEWAY_BIN": gateway]) }
        #expect(status == 0, "node --test failed:\n\(Self.failureExcerpt(output))")
    }

    @Test("the example pages in headless Chromium: a two-node cluster, a drain survived by resume, the React hooks")
    func browserExamples() async throws {
        let node = try #require(ProcessRunner.which("node"), "node (20.10+) is needed for this test")
        try #require(
            ProcessRunner.which("chromium") != nil && ProcessRunner.which("chromedriver") != nil,
            "the browser test needs chromium and chromedriver on PATH (bash .ci/install-deps)")
        let test = Self.repositoryRoot.appendingPathComponent("clients/js/test/browser/examples.test.mjs").path
        let gateway = try gatewayBinary()
        let (status, output) = try await offloaded {
            try runScript([node, "--experimental-websocket", "--test", test], environment: ["GATEWAY_BIN": gateway])
        }
        #expect(status == 0, "the browser test failed:\n\(Self.failureExcerpt(output))")
    }

    @Test("the package packs, installs offline, imports, and its declarations pass tsc --strict (.ci/js-client)")
    func packageAndDeclarations() async throws {
        for tool in ["node", "npm", "tsc"] {
            try #require(ProcessRunner.which(tool) != nil, "\(tool) is needed for this test (bash .ci/install-deps)")
        }
        let script = Self.repositoryRoot.appendingPathComponent(".ci/js-client").path
        let (status, output) = try await offloaded { try runScript(["bash", script]) }
        #expect(status == 0, ".ci/js-client failed:\n\(output.suffix(6000))")
    }

    /// What a failed `node --test` run printed about its failures: each line that names a
    /// failure or an error, with the lines around it, then the end of the output. A
    /// whole run's output is long, and its end alone can cut off the failing assertion.
    static func failureExcerpt(_ output: String, context: Int = 4, limit: Int = 8000) -> String {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        let markers = ["✖", "not ok ", "error:", "Error:", "waited "]
        var picked = IndexSet()
        for (index, line) in lines.enumerated() where markers.contains(where: { line.contains($0) }) {
            picked.insert(integersIn: max(0, index - context)..<min(lines.count, index + context + 1))
        }
        var excerpt = ""
        var last: Int?
        for index in picked {
            if let last, index != last + 1 { excerpt += "  …\n" }
            excerpt += lines[index] + "\n"
            last = index
        }
        return String(excerpt.prefix(limit)) + "\n--- the end of the output:\n" + output.suffix(3000)
    }

    /// The `*.test.mjs` files directly in `directory` (relative to the repository), sorted.
    static func testFiles(in directory: String) throws -> [String] {
        let folder = repositoryRoot.appendingPathComponent(directory)
        return try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".test.mjs") }
            .sorted()
            .map { folder.appendingPathComponent($0).path }
    }
}
