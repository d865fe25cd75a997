public import Foundation
import Synchronization

/// One `redis-server`, as a data server or as a Sentinel, on a loopback port, logging to a
/// file the test can show when it fails. Signals go to it directly, so a test can kill it
/// (SIGKILL), freeze it (SIGSTOP) or thaw it (SIGCONT).
public final class RedisDaemon: Sendable {
    public let name: String
    public let port: Int
    public let directory: URL
    private let process: Mutex<Process?>

    public var logFile: URL { directory.appendingPathComponent("\(name).log") }

    private init(name: String, port: Int, directory: URL) {
        self.name = name
        self.port = port
        self.directory = directory
        self.process = Mutex(nil)
    }

    static func executable(_ name: String) throws -> String {
        guard
            let path = ["/usr/bin/\(name)", "/usr/local/bin/\(name)"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else { throw TestSupportError("\(name) is not installed (apt-get install redis-server)") }
        return path
    }

    /// A data server without persistence; `replicaOf` makes it a replica of that port.
    public static func server(name: String, in directory: URL, replicaOf: Int? = nil) async throws -> RedisDaemon {
        let daemon = RedisDaemon(name: name, port: try freeLoopbackPort(), directory: directory)
        var arguments = [
            "--port", "\(daemon.port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--dbfilename", "\(name).rdb", "--logfile", daemon.logFile.path,
            "--loglevel", "notice",
        ]
        if let replicaOf { arguments += ["--replicaof", "127.0.0.1", "\(replicaOf)"] }
        try daemon.run(try executable("redis-server"), arguments)
        try await daemon.awaitPing()
        return daemon
    }

    /// A Sentinel watching `master` at `masterPort` with the given timings (milliseconds).
    public static func sentinel(
        name: String,
        in directory: URL,
        master: String,
        masterPort: Int,
        quorum: Int,
        downAfterMilliseconds: Int,
        failoverTimeoutMilliseconds: Int
    ) async throws -> RedisDaemon {
        let daemon = RedisDaemon(name: name, port: try freeLoopbackPort(), directory: directory)
        // Sentinel rewrites its configuration file as it learns, so each needs its own.
        let configuration = directory.appendingPathComponent("\(name).conf")
        let text = """
            port \(daemon.port)
            bind 127.0.0.1
            dir \(directory.path)
            logfile \(daemon.logFile.path)
            sentinel monitor \(master) 127.0.0.1 \(masterPort) \(quorum)
            sentinel down-after-milliseconds \(master) \(downAfterMilliseconds)
            sentinel failover-timeout \(master) \(failoverTimeoutMilliseconds)
            sentinel parallel-syncs \(master) 1

            """
        try text.write(to: configuration, atomically: true, encoding: .utf8)
        // `redis-server --sentinel` is what the `redis-sentinel` package's command runs; with it
        // the tests need no package beyond `redis-server`.
        try daemon.run(try executable("redis-server"), [configuration.path, "--sentinel"])
        try await daemon.awaitPing()
        return daemon
    }

    private func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process.withLock { $0 = process }
    }

    private func awaitPing() async throws {
        let answered = await eventually(within: .seconds(10)) { (try? await self.cli("PING")) == "PONG" }
        guard answered else { throw TestSupportError("\(name) on port \(port) did not answer PING; \(logTail())") }
    }

    public var isRunning: Bool { process.withLock { $0?.isRunning ?? false } }

    /// Sends `signal` (SIGKILL, SIGSTOP, SIGCONT …); after SIGKILL, waits until it is gone.
    public func signal(_ signal: Int32) {
        process.withLock { process in
            guard let running = process, running.isRunning else { return }
            if signal == SIGKILL {
                running.killAndAwaitEnd()
                process = nil
            } else {
                kill(running.processIdentifier, signal)
            }
        }
    }

    /// Runs one command through `redis-cli` and returns its output, trimmed.
    @discardableResult
    public func cli(_ arguments: String...) async throws -> String {
        try await cli(arguments)
    }

    @discardableResult
    public func cli(_ arguments: [String]) async throws -> String {
        try await runToCompletion(try Self.executable("redis-cli"), ["-p", "\(port)"] + arguments).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `INFO`-style `key:value` lines, or a flat `key\nvalue` reply (`SENTINEL MASTER`), as a dictionary.
    public func fields(_ arguments: String...) async throws -> [String: String] {
        let output = try await cli(arguments)
        let lines = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        if lines.contains(where: { $0.contains(":") }) {
            return Dictionary(
                lines.compactMap { line in
                    line.firstIndex(of: ":").map { (String(line[..<$0]), String(line[line.index(after: $0)...])) }
                },
                uniquingKeysWith: { $1 })
        }
        return Dictionary(
            stride(from: 0, to: lines.count - 1, by: 2).map { (lines[$0], lines[$0 + 1]) }, uniquingKeysWith: { $1 })
    }

    /// The last lines of its log, for a failure message.
    public func logTail(lines: Int = 15) -> String {
        let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? "(no log)"
        return "\(name) log:\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    deinit {
        signal(SIGCONT)
        signal(SIGKILL)
    }
}
