import Foundation

/// Runs blocking work (waiting for a child process) on a Dispatch thread. Tests share the
/// cooperative pool, two threads on this machine; a test blocking one of them for seconds
/// starves the others' WebSocket clients, and their servers rightly call them dead.
public func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// How long a short program (redis-cli, openssl, a subcommand) may run before it counts as hung.
public let shortProgramBound: Duration = .seconds(60)

/// Runs a program that starts no daemons to completion; returns its exit status and its
/// standard output and error together. A program still running after `timeout` is killed and
/// the call fails.
public func runToCompletion(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:],
    timeout: Duration = shortProgramBound
) async throws -> (status: Int32, output: String) {
    try await offloaded {
        try runBlockingToCompletion(executable, arguments, environment: environment, timeout: timeout)
    }
}

/// `runToCompletion` for a caller that may block its thread.
public func runBlockingToCompletion(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:],
    timeout: Duration = shortProgramBound
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    // Read on another thread so that the wait below keeps its bound; the read ends when the
    // program exits or is killed.
    let collected = Collected()
    let reader = DispatchGroup()
    reader.enter()
    DispatchQueue.global().async {
        collected.data = output.fileHandleForReading.readDataToEndOfFile()
        reader.leave()
    }
    let status: Int32
    do {
        status = try process.blockingExitStatus(within: timeout)
    } catch {
        _ = reader.wait(timeout: .now() + outputCloseBound)
        throw error
    }
    guard reader.wait(timeout: .now() + outputCloseBound) == .success else {
        throw TestSupportError("\(executable) exited but its output stayed open: something it started holds it")
    }
    return (status, String(decoding: collected.data, as: UTF8.self))
}

/// How long the output may stay open after the program exits (it ends at once unless a
/// process the program left behind holds it).
private let outputCloseBound: Double = 5

/// The reader thread's result, handed over through the DispatchGroup's wait.
private final class Collected: @unchecked Sendable {
    var data = Data()
}
