import AiravataCore
import AiravataTestSupport
import Foundation
import Testing

@testable import AiravataServer

/// `process_open_fds` is read every second for the node report; it must stay cheap on a node
/// holding thousands of sockets and still say how many descriptors the node holds.
@Suite("Process figures")
struct ProcessFiguresTests {
    static let secret = "process-figures-test-secret-that-is-long-enough"

    @Test("process_open_fds is the node's descriptor count, and follows its connections")
    func openDescriptors() async throws {
        let node = try GatewayProcess.start(
            arguments: [
                "--max-connections-per-user", "100", "--stats-interval", "0", "--drain-delay", "0", "--log-level",
                "warning",
            ],
            environment: ["AIRAVATA_JWT_SECRET": Self.secret])
        defer { node.stop() }
        try await node.waitFor("/readyz", toAnswer: 200)
        let directory = "/proc/\(node.processID)/fd"

        // The node is idle between the two reads, so the metric and a listing made from
        // outside the node must agree exactly, but for the metric's own request: while the
        // node answers it, that connection is one more descriptor.
        func agree() async -> (metric: Int?, listed: Int?) {
            let metric = await Self.openDescriptors(port: node.port)
            return (metric, ProcessFigures.listedEntries(in: directory))
        }
        var before: (metric: Int?, listed: Int?) = (nil, nil)
        #expect(
            await eventually {
                before = await agree(); return before.metric != nil && before.metric == before.listed.map { $0 + 1 }
            },
            "metric \(String(describing: before.metric)), listing \(String(describing: before.listed))")

        let issuer = await TokenIssuer(hmacSecret: Self.secret)
        let token = try await issuer.token(subject: "alice")
        var sockets: [RawWebSocket] = []
        defer { sockets.forEach { $0.close() } }
        for _ in 0..<40 { sockets.append(try await node.connect("/ws/user", token: token)) }

        var after: (metric: Int?, listed: Int?) = (nil, nil)
        #expect(
            await eventually {
                after = await agree(); return after.metric != nil && after.metric == after.listed.map { $0 + 1 }
            },
            "metric \(String(describing: after.metric)), listing \(String(describing: after.listed))")
        let grown = (after.metric ?? 0) - (before.metric ?? 0)
        #expect(grown >= 40, "40 WebSockets added \(grown) descriptors")
    }

    @Test("the readiness waits of the test harnesses tell a node's own listener from a stranger's")
    func listenerOwner() async throws {
        let node = try GatewayProcess.start(
            arguments: ["--stats-interval", "0", "--drain-delay", "0", "--log-level", "warning"],
            environment: ["AIRAVATA_JWT_SECRET": Self.secret])
        defer { node.stop() }
        try await node.waitFor("/readyz", toAnswer: 200)
        #expect(processListens(pid: node.processID, port: node.port))
        #expect(!processListens(pid: getpid(), port: node.port))
        // A port nobody listens on belongs to no one.
        let unused = try freeLoopbackPort()
        #expect(!processListens(pid: node.processID, port: unused))
    }

    @Test("a /proc file longer than a page is read whole")
    func longProcFile() throws {
        // /proc/net/tcp lists every socket: while the suite runs, far more than a page. Its
        // rows are fixed-width, so the whole file is the header plus whole rows.
        let text = try #require(ProcessFigures.text(of: "/proc/self/net/tcp"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(text.hasSuffix("\n"))
        #expect(lines.first?.contains("local_address") == true)
        // Open enough sockets that the table passes a page whatever else runs.
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        for _ in 0..<40 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            listen(fd, 1)
            sockets.append(fd)
        }
        let longer = try #require(ProcessFigures.text(of: "/proc/self/net/tcp"))
        #expect(longer.utf8.count > 4096, "only \(longer.utf8.count) bytes read")
        #expect(longer.split(separator: "\n").count > 40)
    }

    static func openDescriptors(port: Int) async -> Int? {
        guard let response = try? await HTTPProbe.request(port: port, path: "/metrics", timeout: .seconds(2)),
            response.status == 200
        else { return nil }
        for line in response.body.split(separator: "\n") where line.hasPrefix("process_open_fds ") {
            return Double(line.dropFirst("process_open_fds ".count)).map { Int($0) }
        }
        return nil
    }
}
