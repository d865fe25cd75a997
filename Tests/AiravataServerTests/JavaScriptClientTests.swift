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
}

/// A child process whose standard output is read line by line.
final class ProcessRunner: Sendable {
    private let process: Process
    private let lines: Inbox

    final class Inbox: Sendable {
        private let state = Mutex(
            (buffer: "", lines: [String](), waiters: [CheckedContinuation<String?, Never>](), done: false))

        func append(_ text: String) {
            let resumed = state.withLock { state -> [(CheckedContinuation<String?, Never>, String)] in
                state.buffer += text
                while let newline = state.buffer.firstIndex(of: "\n") {
                    state.lines.append(String(state.buffer[..<newline]))
                    state.buffer = String(state.buffer[state.buffer.index(after: newline)...])
                }
                var pairs: [(CheckedContinuation<String?, Never>, String)] = []
                while !state.waiters.isEmpty, !state.lines.isEmpty {
                    pairs.append((state.waiters.removeFirst(), state.lines.removeFirst()))
                }
                return pairs
            }
            for (waiter, line) in resumed { waiter.resume(returning: line) }
        }

        func finish() {
            let waiters = state.withLock { state in
                state.done = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: nil) }
        }

        func next() async -> String? {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> String?? in
                    if !state.lines.isEmpty { return .some(state.lines.removeFirst()) }
                    if state.done { return .some(nil) }
                    state.waiters.append(continuation)
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    static func which(_ name: String) -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return paths.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init(executable: String, arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        let lines = Inbox()
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                lines.finish()
            } else {
                lines.append(String(decoding: data, as: UTF8.self))
            }
        }
        try process.run()
        self.process = process
        self.lines = lines
    }

    /// The next stdout line as JSON; fails after `timeout`.
    func nextJSONLine(timeout: Duration = .seconds(20)) async throws -> JSONValue {
        let line = try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { await self.lines.next() }
            group.addTask {
                try await Task.sleep(for: timeout)
                // Ending the child closes its output, which releases the reader above.
                self.terminate()
                throw RawWebSocket.Failure(description: "no output from the child process within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let line else { throw RawWebSocket.Failure(description: "the child process ended its output") }
        return try JSONValue(parsing: line)
    }

    func exitCode() async throws -> Int32 {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while process.isRunning, clock.now < deadline { try await clock.sleep(for: .milliseconds(20)) }
        return process.isRunning ? -1 : process.terminationStatus
    }

    func terminate() {
        if process.isRunning { process.terminate() }
    }
}
