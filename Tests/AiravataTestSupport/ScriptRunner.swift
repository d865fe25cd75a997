import Foundation

/// How long a cluster script (start, stop, a rolling upgrade at CI size) may run before it
/// counts as hung.
public let scriptBound: Duration = .seconds(900)

/// Runs a command to completion, blocking (call it through `offloaded`), and returns its exit
/// status and its output, stdout and stderr together.
///
/// It goes through Python, which closes inherited descriptors for its child: Foundation's
/// Process watches one of its own, and daemons a script leaves behind would hold it open
/// (waitUntilExit would never return). Output goes to a file, not a pipe, for the same reason.
///
/// A script still running after `timeout` is killed (its daemons are left to its stop script)
/// and the call fails.
public func runScript(
    _ command: [String], environment: [String: String] = [:], timeout: Duration = scriptBound
) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try executable(named: "python3"))
    // The test process blocks SIGTERM in its threads and children inherit the mask: clear it, so
    // that the scripts' own children (redis-server, HAProxy) stop when told to.
    let wrapper =
        "import signal, subprocess, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
        + "sys.exit(subprocess.call(sys.argv[1:]))"
    process.arguments = ["-c", wrapper] + command
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("script-\(UUID().uuidString).log")
    _ = FileManager.default.createFile(atPath: log.path, contents: nil)
    let handle = try FileHandle(forWritingTo: log)
    defer { try? FileManager.default.removeItem(at: log) }
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    let status = try process.blockingExitStatus(within: timeout)
    try handle.close()
    let data = try Data(contentsOf: log)
    return (status, String(decoding: data, as: UTF8.self))
}
