import Foundation
import Synchronization

/// A private `redis-server` on a free loopback port, without persistence, for one test.
public final class RedisServerProcess: Sendable {
    public let port: Int
    private let process: Mutex<Process?>
    private let directory: URL

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    private init(port: Int, directory: URL) {
        self.port = port
        self.process = Mutex(nil)
        self.directory = directory
    }

    public static func start() async throws -> RedisServerProcess {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = RedisServerProcess(port: try freeLoopbackPort(), directory: directory)
        try await server.launch()
        return server
    }

    /// Starts (again) on the same port, e.g. after `kill()`.
    public func launch() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable(named: "redis-server"))
        process.arguments = [
            "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--loglevel", "warning",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process.withLock { $0 = process }
        let clock = ContinuousClock()
        // A bound on start-up, not a measure: CI once saw three servers, started together
        // while the suite's first tests ran on two cores, all miss a 10 s one.
        let deadline = clock.now + .seconds(30)
        while clock.now < deadline {
            if (try? await ping()) == true, processListens(pid: process.processIdentifier, port: port) { return }
            if !process.isRunning { break }
            try await clock.sleep(for: .milliseconds(20))
        }
        throw TestSupportError(
            "redis-server on port \(port) did not answer PING\(process.isRunning ? "" : " (it exited: the port was taken?)")"
        )
    }

    /// SIGKILL: no goodbye to clients.
    public func kill() {
        process.withLock { process in
            guard let running = process, running.isRunning else { return }
            running.killAndAwaitEnd()
            process = nil
        }
    }

    public func stop() {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Runs one command through `redis-cli` and returns its output (for test set-up and checks).
    @discardableResult
    public func cli(_ arguments: String...) async throws -> String {
        try await cli(arguments: arguments)
    }

    @discardableResult
    public func cli(arguments: [String]) async throws -> String {
        try await runToCompletion(try executable(named: "redis-cli"), ["-p", "\(port)"] + arguments).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func ping() async throws -> Bool {
        try await cli("PING") == "PONG"
    }

    deinit {
        stop()
    }
}
