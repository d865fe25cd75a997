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
            #if os(Linux)
                #expect(try await Self.claims(node, "claimed") == 1)
            #endif

            try await socket.pauseReading()
            for index in 0..<Self.events {
                _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "\(index) \(Self.filler)"))
            }
            // The client's buffers filled: a send the kernel did not take whole, the rest in NIO.
            #expect(
                await eventually(within: .seconds(10)) {
                    (try? await Self.metric(node, "airavata_direct_write_handovers_total")) ?? 0 >= 1
                }, "no send was handed to NIO while the client read nothing")
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

    @Test("a client that hangs up with unread frames is dropped cleanly while events keep coming; the node serves on")
    func hangUpMidStream() async throws {
        let server = ServerConfiguration(maxOutboundBytes: 64 << 20)
        try await TestGateway.with(server: server) { node in
            let doomed = try await node.connect("/ws/user", user: "alice")
            _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "first"))
            _ = try await doomed.nextMessage()
            #if os(Linux)
                #expect(try await Self.claims(node, "claimed") == 1)
            #endif
            try await doomed.pauseReading()
            for index in 0..<500 {
                _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "\(index) \(Self.filler)"))
            }
            // 8 MB: more than the kernel's buffers hold, so part waits in NIO when the client
            // closes. Closing with frames unread makes the client's kernel answer with a
            // reset: NIO fails what it holds, and later events find the connection gone.
            doomed.close()
            for index in 500..<700 {
                _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "\(index) \(Self.filler)"))
            }
            #expect(try await eventually { try await Self.metric(node, "airavata_connections_active") == 0 })
            let fresh = try await node.connect("/ws/user", user: "alice")
            defer { fresh.close() }
            _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "after"))
            #expect(try await fresh.nextMessage()["data"]?["title"]?.stringValue == "after")
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
        try await metric(node, "airavata_direct_writers_total{outcome=\"\(outcome)\"}")
    }

    /// The value of one series of the node's metrics.
    static func metric(_ node: TestGateway, _ series: String) async throws -> Int? {
        let text = try await node.http.request(method: "GET", path: "/metrics").bodyString
        return MetricsExposition(text: text).value(series).map { Int($0) }
    }
}
