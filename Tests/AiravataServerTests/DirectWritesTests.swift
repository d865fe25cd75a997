import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Testing

/// A connection's frames go to its socket directly from its first delivery on
/// (`SocketWriter`); what the kernel cannot take yet goes through NIO, and later frames
/// follow it there. These tests hold the claim, the order across the hand-over, and the
/// switch that turns it off. (TLS connections never claim: `TLSTests` delivers over TLS.)
@Suite("Direct socket writes")
struct DirectWritesTests {
    /// Events big enough that a client which stops reading fills the kernel's buffers
    /// (4 MiB of send buffer and the receive window) several times over.
    static let events = 800
    static let filler = String(repeating: "x", count: 16_000)

    @Test(
        "a delivered connection writes its socket directly; a client that stops reading still gets every byte, in order"
    )
    func orderAcrossTheHandOver() async throws {
        // Room for everything in the outbound budget: this test is about order, not the cap.
        let server = ServerConfiguration(maxOutboundBytes: 64 << 20)
        try await TestGateway.with(server: server) { node in
            let socket = try await node.connect("/ws/user", user: "alice")
            defer { socket.close() }
            _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "first"))
            #expect(try await socket.nextMessage()["data"]?["title"]?.stringValue == "first")
            #expect(try await Self.claims(node, "claimed") == 1)

            try await socket.pauseReading()
            for index in 0..<Self.events {
                _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "\(index) \(Self.filler)"))
            }
            try await socket.resumeReading()
            var wrong: [Int] = []
            for index in 0..<Self.events {
                let title = try await socket.nextMessage(timeout: .seconds(30))["data"]?["title"]?.stringValue
                if title != "\(index) \(Self.filler)" { wrong.append(index) }
            }
            #expect(
                wrong.isEmpty, "events out of order or damaged from index \(wrong.first ?? -1) (\(wrong.count) in all)")
            #expect(try await Self.claims(node, "unproven") == 0)
        }
    }

    @Test("--direct-writes false: every write goes through NIO, and deliveries arrive as before")
    func switchedOff() async throws {
        var server = ServerConfiguration()
        server.directWrites = false
        try await TestGateway.with(server: server) { node in
            let socket = try await node.connect("/ws/user", user: "alice")
            defer { socket.close() }
            for index in 0..<3 {
                _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "n-\(index)"))
            }
            for index in 0..<3 {
                #expect(try await socket.nextMessage()["data"]?["title"]?.stringValue == "n-\(index)")
            }
            #expect(try await Self.claims(node, "claimed") == 0)
        }
    }

    /// `airavata_direct_writers_total{outcome=…}` from the node's metrics.
    static func claims(_ node: TestGateway, _ outcome: String) async throws -> Int? {
        let metrics = try await node.http.request(method: "GET", path: "/metrics").bodyString
        let prefix = "airavata_direct_writers_total{outcome=\"\(outcome)\"} "
        guard let line = metrics.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Int(line.dropFirst(prefix.count))
    }
}
