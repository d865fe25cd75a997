import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// What the container image promises, without a container engine: the binary runs as the
/// chart runs it (uid 10001, read-only root, only /tmp writable), answers /healthz, and on
/// SIGTERM drains and exits 0 within the drain it was given.
@Suite("Unprivileged on a read-only root, as the chart runs it")
struct UnprivilegedRunTests {
    static let secret = "unprivileged-run-secret-that-is-long-enough-01"
    /// The chart's user and group (helm/airavata-gateway/values.yaml, podSecurityContext).
    static let chartUser = "10001"
    static let drain = (delay: 1, spread: 1, timeout: 5)

    static func sandbox() throws -> [String] {
        guard let bwrap = ProcessRunner.which("bwrap") else {
            throw TestSupportError("bwrap is not on PATH: apt-get install bubblewrap (.ci/install-deps does)")
        }
        return [
            bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--unshare-user",
            "--uid", chartUser, "--gid", chartUser, "--die-with-parent",
        ]
    }

    @Test("/healthz answers, and SIGTERM drains a connected client and exits 0 within the drain")
    func healthAndDrain() async throws {
        let node = try GatewayProcess.start(
            arguments: [
                "--drain-delay", "\(Self.drain.delay)", "--drain-spread", "\(Self.drain.spread)",
                "--drain-timeout", "\(Self.drain.timeout)", "--stats-interval", "0", "--log-level", "info",
            ],
            environment: ["AIRAVATA_JWT_SECRET": Self.secret],
            wrapper: try Self.sandbox())
        defer { node.stop() }
        try await node.waitFor("/healthz", toAnswer: 200)
        try await node.waitFor("/readyz", toAnswer: 200)

        let token = try await TokenIssuer(hmacSecret: Self.secret).token(subject: "alice")
        let client = try await node.connect("/ws/user", token: token)
        defer { client.close() }

        let clock = ContinuousClock()
        let start = clock.now
        try node.signal(SIGTERM)
        // Draining: not ready any more, so load balancers stop sending new clients.
        try await node.waitFor("/readyz", toAnswer: 503, within: .seconds(Self.drain.delay + 2))
        // The client is asked to reconnect elsewhere, then closed with 1012 (service restart).
        let window = Duration.seconds(Self.drain.delay + Self.drain.spread + 5)
        let notice = try await client.nextMessage(timeout: window) { $0["data"]?["action"] != nil }
        #expect(notice["data"]?["action"]?.stringValue == "reconnect", "got \(notice.jsonString)")
        let close = try await client.expectClose(timeout: window)
        #expect(close.code == 1012, "the drain closed the client with \(close.code.map(String.init) ?? "no code")")
        // As a browser would: answer the close and leave, so the node need not wait its timeout.
        try await client.sendClose()
        client.close()

        let bound = Self.drain.delay + Self.drain.spread + Self.drain.timeout
        let status = try await node.exitStatus(within: .seconds(bound))
        #expect(status == 0, "the node exited \(status) after SIGTERM; log:\n\(node.log())")
        #expect(clock.now - start < .seconds(bound), "the drain took longer than delay + spread + timeout")
        let log = node.log()
        #expect(!log.contains("Read-only file system"), "the node tried to write outside /tmp:\n\(log)")
    }
}

extension RawWebSocket {
    /// The next message that `matches`, skipping others; bounded like `nextMessage`.
    func nextMessage(timeout: Duration, where matches: (JSONValue) -> Bool) async throws -> JSONValue {
        while true {
            let message = try await nextMessage(timeout: timeout)
            if matches(message) { return message }
        }
    }
}
