public import AiravataProtocol
import Foundation

/// One real `airavata-gateway serve` process on a free loopback port, for tests of what only
/// the binary does (flags, files, signals). What it writes goes to a file, shown when a wait
/// fails, so that a red run says why the node did not come up.
public final class GatewayProcess: Sendable {
    public let port: Int
    /// How probes reach the node: nil for plain HTTP.
    public let tls: HTTPProbe.TLS?
    private let wrapped: Bool
    private let process: Process
    private let logFile: URL

    private init(port: Int, tls: HTTPProbe.TLS?, wrapped: Bool, process: Process, logFile: URL) {
        self.port = port
        self.tls = tls
        self.wrapped = wrapped
        self.process = process
        self.logFile = logFile
    }

    /// Starts `serve` with `--host 127.0.0.1 --port <free>` and `arguments`.
    /// - Parameter wrapper: a command that runs the binary (`bwrap …`), or empty.
    public static func start(
        arguments: [String],
        environment: [String: String] = [:],
        wrapper: [String] = [],
        tls: HTTPProbe.TLS? = nil
    ) throws -> GatewayProcess {
        let port = try freeLoopbackPort()
        let binary = try gatewayBinary()
        let logFile = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: logFile.path, contents: nil) else {
            throw TestSupportError("cannot create \(logFile.path)")
        }
        let log = try FileHandle(forWritingTo: logFile)
        let command = wrapper + [binary, "serve", "--host", "127.0.0.1", "--port", "\(port)"] + arguments
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try log.close()
        return GatewayProcess(port: port, tls: tls, wrapped: !wrapper.isEmpty, process: process, logFile: logFile)
    }

    /// What the node has written so far (the last `limit` characters).
    public func log(limit: Int = 4000) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
        return String(text.suffix(limit))
    }

    /// The status of a GET, or nil when the node does not answer.
    public func status(_ path: String) async -> Int? {
        try? await HTTPProbe.request(port: port, path: path, tls: tls, timeout: .seconds(2)).status
    }

    /// Waits (bounded) until `path` answers `status`; throws with the node's log otherwise.
    public func waitFor(
        _ path: String = "/readyz", toAnswer status: Int = 200, within timeout: Duration = .seconds(20)
    ) async throws {
        var last: Int?
        // The answer counts only from this process: another test's node may hold the port.
        let reached = await eventually(within: timeout) {
            last = await self.status(path)
            return (last == status && processListens(pid: self.process.processIdentifier, port: self.port))
                || !self.process.isRunning
        }
        guard reached, last == status else {
            let state = process.isRunning ? "running" : "exited"
            throw TestSupportError(
                "expected \(path) to answer \(status) within \(timeout); last answer: \(last.map(String.init) ?? "none")"
                    + " (process \(state)); its log:\n\(log())")
        }
    }

    /// Opens a WebSocket with `token` and waits until admitted (a ping answered).
    public func connect(_ path: String, token: String) async throws -> RawWebSocket {
        let separator = path.contains("?") ? "&" : "?"
        let socket = try await RawWebSocket.connect(
            port: port, path: "\(path)\(separator)token=\(token)", tls: tls != nil)
        try await socket.send(.object(["type": .string("ping")]))
        _ = try await socket.nextMessage(ofType: "pong")
        return socket
    }

    /// POSTs events to the ingestion API and requires a 202.
    public func publish(_ events: JSONValue, token: String) async throws {
        let response = try await HTTPProbe.request(
            port: port, method: "POST", path: "/api/v1/events",
            headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
            body: events.jsonString, tls: tls)
        guard response.status == 202 else {
            throw TestSupportError("publish answered \(response.status): \(response.body)")
        }
    }

    public var isRunning: Bool { process.isRunning }

    /// The process id of what was started (the wrapper, when there is one).
    public var processID: Int32 { process.processIdentifier }

    /// Signals the node. Under a wrapper (bwrap stays as the parent and does not pass signals
    /// on) that is the wrapper's child, found in /proc.
    public func signal(_ signal: Int32) throws {
        guard process.isRunning else { return }
        guard wrapped else {
            kill(process.processIdentifier, signal)
            return
        }
        let pid = process.processIdentifier
        let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        guard let child = children.split(separator: " ").first.flatMap({ Int32($0) }) else {
            throw TestSupportError("the wrapper (pid \(pid)) has no child to signal")
        }
        kill(child, signal)
    }

    /// Waits (bounded) for the process to exit and returns its status; a process still
    /// running at the deadline is killed and the wait fails, so a hang fails the test.
    public func exitStatus(within timeout: Duration) async throws -> Int32 {
        let exited = await eventually(within: timeout) { !self.process.isRunning }
        guard exited else {
            stop()
            throw TestSupportError("the node did not exit within \(timeout); its log:\n\(log())")
        }
        return process.terminationStatus
    }

    /// SIGKILL if still running, then removes the log.
    public func stop() {
        process.killAndAwaitEnd()
        try? FileManager.default.removeItem(at: logFile)
    }
}
