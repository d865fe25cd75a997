import AiravataTestSupport
import Foundation
import Testing

/// The rolling-upgrade driver (cluster/rolling-upgrade.py) at CI size: three nodes behind
/// HAProxy are replaced one by one under load with the chart's drain timings, and every
/// client must get every event once, in order, with its subscriptions intact.
@Suite("Rolling upgrade under load", .serialized)
struct RollingUpgradeTests {
    static func drive(_ arguments: [String]) async throws -> (Int32, String) {
        let binaries = URL(fileURLWithPath: try gatewayBinary()).deletingLastPathComponent()
        let command =
            [
                "python3", LocalClusterScriptTests.root.appendingPathComponent("cluster/rolling-upgrade.py").path,
                "--bin", binaries.appendingPathComponent("airavata-gateway").path,
                "--load-bin", binaries.appendingPathComponent("airavata-load").path,
            ] + arguments
        return try await offloaded { try LocalClusterScriptTests.runCommand(command, environment: [:]) }
    }

    /// The driver's own summary lines, for the test log.
    static func summary(_ output: String) -> String {
        output.split(separator: "\n").filter { $0.contains("load:") || $0.contains("[rolling-upgrade") }
            .joined(separator: "\n")
    }

    @Test("SIGTERM each node in turn (300 clients, 100 events/s): nothing lost, repeated, reordered or unsubscribed")
    func rollingSigterm() async throws {
        let (status, output) = try await Self.drive(["--clients", "300", "--rate", "100"])
        #expect(status == 0, "\(Self.summary(output))")
        #expect(output.contains("\"lost\":0,\"duplicated\":0"))
        #expect(output.contains("\"producerGaveUp\":0"), "\(Self.summary(output))")
    }

    @Test("SIGKILL each node in turn: its clients resume on the others and lose nothing")
    func rollingSigkillWithResume() async throws {
        let (status, output) = try await Self.drive(["--clients", "150", "--rate", "100", "--signal", "KILL"])
        #expect(status == 0, "\(Self.summary(output))")
    }

    @Test("negative control: a node that overruns its grace period fails the run, though nothing is lost")
    func overrunFails() async throws {
        // Short chart timings (a 6 s grace period), and nodes told to wait 12 s before draining.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("overrun-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let values = directory.appendingPathComponent("values.yaml")
        try """
        drain:
          preStopSeconds: 1
          delaySeconds: 1
          spreadSeconds: 1
          timeoutSeconds: 2
          marginSeconds: 1
        """.write(to: values, atomically: true, encoding: .utf8)
        let (status, output) = try await Self.drive(
            [
                "--clients", "30", "--rate", "20", "--settle", "8", "--values", values.path,
                "--node-args=--drain-delay 12s",
            ])
        #expect(status == 1, "\(Self.summary(output))")
        #expect(output.contains("overran the 6s grace period"), "\(Self.summary(output))")
        // A failing run keeps its logs for diagnosis; this failure is the expected one.
        if let kept = output.split(separator: "\n").first(where: { $0.contains("logs kept in ") }),
            let path = kept.components(separatedBy: "logs kept in ").last
        {
            try? FileManager.default.removeItem(atPath: path.trimmingCharacters(in: .whitespaces))
        }
    }

    @Test("negative control: SIGKILL without resume loses events, and the driver sees it")
    func negativeControl() async throws {
        let (status, output) = try await Self.drive(
            [
                "--clients", "150", "--rate", "100", "--signal", "KILL", "--no-resume", "--expect-fail", "--settle",
                "8",
            ])
        #expect(status == 0, "\(Self.summary(output))")
        #expect(output.contains("negative control saw the loss"))
    }
}
