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
        let command = [
            node, "--experimental-websocket", "--test",
            Self.repositoryRoot.appendingPathComponent("clients/js/test").path,
        ]
        let gateway = try gatewayBinary()
        let (status, output) = try await offloaded { try runScript(command, environment: ["GATEWAY_BIN": gateway]) }
        #expect(status == 0, "node --test failed:\n\(output.suffix(6000))")
    }
}
