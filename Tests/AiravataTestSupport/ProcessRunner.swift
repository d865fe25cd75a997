public import AiravataProtocol
import Foundation
import Synchronization

/// A child process whose standard output is read line by line.
public final class ProcessRunner: Sendable {
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

    public static func which(_ name: String) -> String? {
        try? executable(named: name)
    }

    public init(executable: String, arguments: [String]) throws {
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
    public func nextJSONLine(timeout: Duration = .seconds(20)) async throws -> JSONValue {
        let line = try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { await self.lines.next() }
            group.addTask {
                try await Task.sleep(for: timeout)
                // Ending the child closes its output, which releases the reader above.
                self.terminate()
                throw TestSupportError("no output from the child process within \(timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let line else { throw TestSupportError("the child process ended its output") }
        return try JSONValue(parsing: line)
    }

    /// The exit status once the child has exited; a child still running after `timeout` is
    /// killed and the wait fails.
    public func exitCode(within timeout: Duration = .seconds(10)) async throws -> Int32 {
        try await process.exitStatus(within: timeout)
    }

    public func terminate() {
        if process.isRunning { process.terminate() }
    }
}
