public import Foundation

/// How often a waiter looks whether a child has exited: short against any test's bound,
/// long against the cost of looking.
let exitPollInterval: Duration = .milliseconds(20)
/// How long a killed child gets to end before the waiter gives up.
let reapBound: Duration = .seconds(5)

/// Exit statuses read only once a child has exited. Foundation's `terminationStatus` traps
/// while the process runs, so reading it after a bounded wait that ran out would crash the
/// whole test run; these kill an overrunning child and throw instead, failing one test.
extension Process {
    /// Waits without holding a thread of the cooperative pool.
    public func exitStatus(within timeout: Duration) async throws -> Int32 {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        do {
            while isRunning, clock.now < deadline { try await clock.sleep(for: exitPollInterval) }
        } catch {
            killAndAwaitEnd()
            throw error
        }
        if !isRunning { return terminationStatus }
        killAndAwaitEnd()
        throw TestSupportError("\(name) did not exit within \(timeout); it was killed")
    }

    /// The same for a thread that may block (a Dispatch thread, see `offloaded`, or a `defer`).
    public func blockingExitStatus(within timeout: Duration) throws -> Int32 {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while isRunning, clock.now < deadline { Thread.sleep(forTimeInterval: exitPollSeconds) }
        if !isRunning { return terminationStatus }
        killAndAwaitEnd()
        throw TestSupportError("\(name) did not exit within \(timeout); it was killed")
    }

    /// SIGKILL, then a wait of milliseconds until the kernel has ended the child (its sockets
    /// closed, its ports free), read from /proc. Not `waitUntilExit`: that spins a run loop on
    /// the caller's thread until Foundation's reaper, on a Dispatch thread, has noticed; on a
    /// loaded machine that can hold one of the cooperative pool's two threads for seconds.
    public func killAndAwaitEnd() {
        guard isRunning else { return }
        let pid = processIdentifier
        kill(pid, SIGKILL)
        let clock = ContinuousClock()
        let deadline = clock.now + reapBound
        while !hasEnded(pid: pid), clock.now < deadline { usleep(1_000) }
    }

    private var name: String { executableURL?.lastPathComponent ?? "the child process" }
}

private let exitPollSeconds =
    Double(exitPollInterval.components.seconds) + Double(exitPollInterval.components.attoseconds) / 1e18

/// The full path of `name` on `PATH`, or an error that says what to install. Tests name
/// their tools, never a machine's path to them.
public func executable(named name: String) throws -> String {
    let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
    guard let path = paths.map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    else {
        throw TestSupportError(
            "\(name) is not on PATH (\(paths.joined(separator: ":"))); install it (bash .ci/install-deps)")
    }
    return path
}

/// Whether the process `pid` has ended (gone, or a zombie nobody reaped yet): for processes
/// a script started, which the test cannot wait for.
public func hasEnded(pid: Int32) -> Bool {
    if kill(pid, 0) != 0 { return errno == ESRCH }
    // "pid (comm) S ...": the state follows the last parenthesis.
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
}
