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
    }

    @Test("SIGKILL each node in turn: its clients resume on the others and lose nothing")
    func rollingSigkillWithResume() async throws {
        let (status, output) = try await Self.drive(["--clients", "150", "--rate", "100", "--signal", "KILL"])
        #expect(status == 0, "\(Self.summary(output))")
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
