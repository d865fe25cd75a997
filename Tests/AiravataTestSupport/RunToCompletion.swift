import Foundation

/// Runs blocking work (waiting for a child process) on a Dispatch thread. Tests share the
/// cooperative pool, two threads on this machine; a test blocking one of them for seconds
/// starves the others' WebSocket clients, and their servers rightly call them dead.
public func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// Runs a program that starts no daemons to completion; returns its exit status and its
/// standard output and error together.
public func runToCompletion(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:]
) async throws -> (status: Int32, output: String) {
    try await offloaded { try runBlocking(executable, arguments, environment: environment) }
}

private func runBlocking(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String]
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
