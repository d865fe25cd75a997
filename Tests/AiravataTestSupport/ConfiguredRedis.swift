import Foundation

/// A private `redis-server` (found on PATH) started with a test's own arguments: TLS, a
/// password, ACL users. `RedisServerProcess` is the plain one most tests use.
public final class ConfiguredRedis: Sendable {
    public let port: Int
    /// Arguments that let `redis-cli` reach and log in to this server.
    public let cliArguments: [String]
    private let process: Process
    private let directory: URL

    private init(port: Int, cliArguments: [String], process: Process, directory: URL) {
        self.port = port
        self.cliArguments = cliArguments
        self.process = process
        self.directory = directory
    }

    /// Starts Redis on a free port; `listen` gives the arguments that make it listen there
    /// (`--port P`, or `--port 0 --tls-port P …`), `cli` how `redis-cli` reaches it.
    public static func start(
        listen: (Int) -> [String],
        cli: (Int) -> [String],
        arguments: [String] = []
    ) async throws -> ConfiguredRedis {
        guard let executable = ProcessRunner.which("redis-server") else {
            throw TestSupportError("redis-server is not on PATH (apt-get install redis-server)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let port = try freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments =
            listen(port) + [
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path,
                "--loglevel", "warning",
            ] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let server = ConfiguredRedis(port: port, cliArguments: cli(port), process: process, directory: directory)
        let answered = await eventually(within: .seconds(10)) { (try? await server.cli("PING")) == "PONG" }
        guard answered else {
            server.stop()
            throw TestSupportError("redis-server \(listen(port).joined(separator: " ")) did not answer PING")
        }
        return server
    }

    /// Runs one command through `redis-cli` and returns its output, trimmed.
    @discardableResult
    public func cli(_ arguments: String...) async throws -> String {
        try await cli(arguments: arguments)
    }

    @discardableResult
    public func cli(arguments: [String]) async throws -> String {
        guard let redisCLI = ProcessRunner.which("redis-cli") else {
            throw TestSupportError("redis-cli is not on PATH")
        }
        return try await runToCompletion(redisCLI, cliArguments + ["--no-auth-warning"] + arguments).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func stop() {
        process.killAndAwaitEnd()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit {
        stop()
    }
}
