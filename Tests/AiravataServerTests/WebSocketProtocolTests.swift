import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import NIOCore
import Testing

/// The RFC 6455 rules end to end: a real node, a raw client sending what no library would.
@Suite("WebSocket protocol rules over a real socket")
struct WebSocketProtocolTests {
    /// A short close wait, so that a client that never answers is hung up on quickly.
    static let server = ServerConfiguration(closeTimeoutSeconds: 1)

    /// Sends `bytes` on an admitted connection and expects a close frame with `code`,
    /// with nothing but the frames already in flight before it, and nothing after it.
    static func expectClose(
        after bytes: ByteBuffer, code: UInt16, server: ServerConfiguration = server,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        try await TestGateway.with(server: server) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            try await socket.sendRaw(bytes)
            let close = try await socket.expectClose()
            #expect(
                close.code == code,
                "expected close \(code), got \(close.code.map(String.init) ?? "none") (\(close.reason))",
                sourceLocation: sourceLocation)
            try await expectNothingAfterClose(socket, sourceLocation: sourceLocation)
            #expect(await eventually { node.gateway.statistics.active == 0 }, sourceLocation: sourceLocation)
        }
    }

    /// After the server's close frame only the end of the connection may come.
    static func expectNothingAfterClose(
        _ socket: RawWebSocket, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let next = try await socket.next(timeout: .seconds(10))
        #expect(
            next == .disconnected, "expected the connection to end after the close frame, got \(next)",
            sourceLocation: sourceLocation)
    }

    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0)
        -> ByteBuffer
    {
        RawWebSocket.frame(opcode: opcode, payload: payload, fin: fin, masked: masked, rsv: rsv)
    }

    static func join(_ frames: ByteBuffer...) -> ByteBuffer {
        var all = ByteBuffer()
        for var frame in frames { all.writeBuffer(&frame) }
        return all
    }

    static let jsonPing = Array(#"{"type":"ping"}"#.utf8)

    // MARK: Frames

    @Test("an unmasked client frame is closed with 1002, and the pings after it get nothing")
    func unmasked() async throws {
        let ping = Self.frame(0x1, Self.jsonPing)
        try await Self.expectClose(
            after: Self.join(Self.frame(0x1, Self.jsonPing, masked: false), ping, ping), code: 1002)
    }

    @Test("a frame with a reserved bit set is closed with 1002", arguments: [UInt8(0x40), 0x20, 0x10])
    func reservedBit(bit: UInt8) async throws {
        try await Self.expectClose(after: Self.frame(0x1, Self.jsonPing, rsv: bit), code: 1002)
    }

    @Test("an unknown opcode is closed with 1002")
    func unknownOpcode() async throws {
        try await Self.expectClose(after: Self.frame(0x3, [1, 2]), code: 1002)
    }

    @Test("a fragmented text message that is not UTF-8 is closed with 1007")
    func invalidUTF8() async throws {
        try await Self.expectClose(
            after: Self.join(Self.frame(0x1, [0x7B, 0xC3], fin: false), Self.frame(0x0, [0x28, 0x7D])), code: 1007)
    }

    @Test("a character split across fragments is still one valid message")
    func splitCharacter() async throws {
        try await TestGateway.with(server: Self.server) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            let bytes = Array(#"{"type":"ping","id":"café"}"#.utf8)
            let cut = try #require(bytes.firstIndex(of: 0xC3)) + 1
            try await socket.sendRaw(
                Self.join(Self.frame(0x1, Array(bytes[..<cut]), fin: false), Self.frame(0x0, Array(bytes[cut...]))))
            let reply = try await socket.nextMessage()
            #expect(reply["type"]?.stringValue == "pong", "expected a pong, got \(reply.jsonString)")
        }
    }

    @Test("a fragmented ping is closed with 1002")
    func fragmentedControlFrame() async throws {
        try await Self.expectClose(after: Self.frame(0x9, [1], fin: false), code: 1002)
    }

    @Test("a ping with more than 125 bytes is closed with 1002")
    func oversizedControlFrame() async throws {
        try await Self.expectClose(after: Self.frame(0x9, Array(repeating: 7, count: 126)), code: 1002)
    }

    @Test("a new text frame inside a fragmented message is closed with 1002")
    func newMessageInsideFragmented() async throws {
        try await Self.expectClose(
            after: Self.join(Self.frame(0x1, Array("{".utf8), fin: false), Self.frame(0x1, Self.jsonPing)), code: 1002)
    }

    @Test("a continuation with no message in progress is closed with 1002")
    func strayContinuation() async throws {
        try await Self.expectClose(after: Self.frame(0x0, Self.jsonPing), code: 1002)
    }

    // MARK: Close handshake

    @Test(
        "a close code a client may not send is answered 1002",
        arguments: [UInt16(999), 1004, 1005, 1006, 1015, 1016, 2999, 5000])
    func invalidCloseCode(code: UInt16) async throws {
        try await Self.expectClose(after: Self.frame(0x8, [UInt8(code >> 8), UInt8(code & 0xFF)]), code: 1002)
    }

    @Test("a valid close code is echoed", arguments: [UInt16(1000), 1001, 3000, 4999])
    func echoedCloseCode(code: UInt16) async throws {
        try await Self.expectClose(
            after: Self.frame(0x8, [UInt8(code >> 8), UInt8(code & 0xFF)] + Array("bye".utf8)), code: code)
    }

    @Test("a one-byte close payload is answered 1002")
    func oneByteClose() async throws {
        try await Self.expectClose(after: Self.frame(0x8, [0x03]), code: 1002)
    }

    @Test("a close reason that is not UTF-8 is answered 1007")
    func closeReasonNotUTF8() async throws {
        try await Self.expectClose(after: Self.frame(0x8, [0x03, 0xE8, 0x6F, 0xFF]), code: 1007)
    }

    @Test("a client that never answers our close is hung up on after the close timeout")
    func boundedCloseWait() async throws {
        try await TestGateway.with(server: ServerConfiguration(maxFrameSize: 1024, closeTimeoutSeconds: 0.5)) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            // A fragmented message over the maximum: our 1009, then no reply from the client.
            let chunk = Array(repeating: UInt8(ascii: "x"), count: 800)
            try await socket.sendRaw(Self.join(Self.frame(0x1, chunk, fin: false), Self.frame(0x0, chunk)))
            let close = try await socket.expectClose()
            #expect(close.code == 1009)
            try await Self.expectNothingAfterClose(socket)
        }
    }

    // MARK: Flooding

    /// A client that floods ping frames (125-byte payloads) without reading; afterwards it
    /// reads again and counts what the node had kept for it.
    static func flood(
        _ node: TestGateway, pings: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> (pongs: Int, close: UInt16?, ended: Bool) {
        let token = try await node.token("flooder")
        let flooder = try await RawWebSocket.connect(
            port: node.port, path: "/ws?token=\(token)", receiveBufferBytes: 16 * 1024)
        defer { flooder.close() }
        try await flooder.send(.object(["type": .string("ping")]))
        _ = try await flooder.nextMessage(ofType: "pong")
        try await flooder.pauseReading()
        let ping = Self.frame(0x9, Array(repeating: 0x61, count: 125))
        var batch = ByteBuffer()
        for _ in 0..<500 { batch.writeImmutableBuffer(ping) }
        do {
            for _ in 0..<(pings / 500) { try await flooder.sendRaw(batch) }
        } catch {
            // The node hung up mid-flood: that is one of the outcomes under test.
        }
        // The node may have hung up already; what it sent before is in the inbox either way.
        try? await flooder.resumeReading()
        var pongs = 0
        while true {
            switch try await flooder.next(timeout: .seconds(5)) {
            case .pong: pongs += 1
            case .close(let code, _): return (pongs, code, true)
            case .disconnected: return (pongs, nil, true)
            default: continue
            }
        }
    }

    /// Runs `flood` and turns "still open after everything was answered" into a failure.
    static func floodUntilClosed(_ node: TestGateway, pings: Int) async throws -> (pongs: Int, close: UInt16?) {
        do {
            let outcome = try await flood(node, pings: pings)
            return (outcome.pongs, outcome.close)
        } catch is Inbox.Timeout {
            Issue.record("expected the flooding client to be closed, but it was still open after \(pings) pings")
            return (pings, nil)
        }
    }

    @Test(
        "a ping flood is rate-limited like messages: about a burst of pongs, then the connection ends (1008 when the close frame outlives the reset), and other clients still get pongs"
    )
    func pingFloodRateLimited() async throws {
        try await TestGateway.with(server: ServerConfiguration(rateLimit: 20, closeTimeoutSeconds: 1)) { node in
            let bystander = try await node.connect("/ws", user: "bob")
            defer { bystander.close() }
            let pings = 20_000
            let outcome = try await Self.floodUntilClosed(node, pings: pings)
            #expect(outcome.pongs < 100, "expected about the burst (40) of pongs, got \(outcome.pongs)")
            if let code = outcome.close { #expect(code == 1008, "expected close 1008, got \(code)") }
            try await Self.expectPong(bystander)
        }
    }

    @Test("a ping flood from a client that never reads is closed as a slow consumer; the queue stays bounded")
    func pingFloodSlowConsumer() async throws {
        let budget = 256 * 1024
        let server = ServerConfiguration(rateLimit: 0, maxOutboundBytes: budget, closeTimeoutSeconds: 1)
        try await TestGateway.with(server: server) { node in
            let bystander = try await node.connect("/ws", user: "bob")
            defer { bystander.close() }
            // 10 MB of pongs (127 bytes each): more than the kernel holds for one socket on
            // loopback (Linux caps send buffers at 4 MiB by default) plus the budget.
            let pings = 80_000
            let outcome = try await Self.floodUntilClosed(node, pings: pings)
            #expect(outcome.pongs < pings, "expected the node to stop queueing pongs, got all \(outcome.pongs)")
            // What reached the client is what the kernel held plus what the node queued.
            let held = outcome.pongs * 127
            #expect(
                held <= (4 << 20) + 4 * budget,
                "expected at most the socket buffers (4 MiB) plus about the budget (\(budget) bytes), got \(held)")
            if let code = outcome.close { #expect(code == 1008, "expected close 1008, got \(code)") }
            try await Self.expectPong(bystander)
        }
    }

    static func expectPong(_ socket: RawWebSocket, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await socket.sendFrame(opcode: 0x9, payload: Array("still-here".utf8))
        var sawPong = false
        for _ in 0..<10 where !sawPong {
            if case .pong(let payload) = try await socket.next() { sawPong = payload == Array("still-here".utf8) }
        }
        #expect(sawPong, "expected a normal client on the same node to get its pong", sourceLocation: sourceLocation)
    }
}
