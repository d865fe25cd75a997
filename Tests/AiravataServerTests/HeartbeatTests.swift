import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Testing

@Suite("Heartbeat: ping and pong both ways, dead clients")
struct HeartbeatTests {
    /// Fast enough for a short test, slow enough that a loaded 2-core CI machine (every
    /// suite runs at once, the node and its clients in one process) still answers in time.
    static let fast = ServerConfiguration(pingIntervalSeconds: 0.5)
    /// Keep-alive checks get more slack: a loaded CI machine may answer late.
    static let relaxed = ServerConfiguration(pingIntervalSeconds: 1)

    @Test("a client's JSON ping is answered with a pong")
    func clientPing() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            try await socket.send(.object(["type": .string("ping"), "id": .string("ping-77")]))
            let pong = try await socket.nextMessage()
            #expect(pong["type"]?.stringValue == "pong")
            #expect(pong["id"]?.stringValue?.hasPrefix("pong-") == true)
        }
    }

    @Test("a client's ping frame is answered with a pong frame")
    func clientPingFrame() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            try await socket.sendFrame(opcode: 0x9, payload: Array("hello".utf8))
            var sawPong = false
            for _ in 0..<5 where !sawPong {
                if case .pong(let payload) = try await socket.next() { sawPong = payload == Array("hello".utf8) }
            }
            #expect(sawPong)
        }
    }

    @Test("the server sends a JSON ping and a ping frame every interval; a JSON pong is accepted")
    func serverPings() async throws {
        try await TestGateway.with(server: Self.fast) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            var sawJSONPing = false
            var sawFramePing = false
            while !(sawJSONPing && sawFramePing) {
                switch try await socket.next(timeout: .seconds(3)) {
                case .text(let text):
                    let parsed = try JSONValue(parsing: text)
                    sawJSONPing = sawJSONPing || parsed["type"]?.stringValue == "ping"
                case .ping: sawFramePing = true
                default: break
                }
            }
            try await socket.send(.object(["type": .string("pong"), "id": .string("pong-1")]))
            try await socket.send(.object(["type": .string("ping")]))
            _ = try await socket.nextMessage(ofType: "pong")
        }
    }

    @Test("a client that answers ping frames but never writes stays connected")
    func framePongsKeepAlive() async throws {
        try await TestGateway.with(server: Self.relaxed) { node in
            let socket = try await node.connect("/ws", user: "alice", answerPings: true)
            defer { socket.close() }
            // Ten intervals: five times the allowed silence.
            let clock = ContinuousClock()
            let end = clock.now + .seconds(4)
            while clock.now < end {
                let event = try await socket.next(timeout: .seconds(2))
                #expect(event != .disconnected)
                if case .close = event { Issue.record("closed although it answered every ping frame") }
            }
        }
    }

    @Test("a client that answers only with JSON pongs stays connected")
    func jsonPongsKeepAlive() async throws {
        try await TestGateway.with(server: Self.relaxed) { node in
            let socket = try await node.connect("/ws", user: "alice", answerPings: false)
            defer { socket.close() }
            let clock = ContinuousClock()
            let end = clock.now + .seconds(4)
            while clock.now < end {
                let event = try await socket.next(timeout: .seconds(2))
                if case .text(let text) = event, (try JSONValue(parsing: text))["type"]?.stringValue == "ping" {
                    try await socket.send(.object(["type": .string("pong")]))
                }
                if case .close = event { Issue.record("closed although it answered every JSON ping") }
                #expect(event != .disconnected)
            }
        }
    }

    @Test("a silent client is closed after two intervals")
    func deadClientDetected() async throws {
        try await TestGateway.with(server: Self.fast) { node in
            let clock = ContinuousClock()
            let connecting = clock.now
            let socket = try await node.connect("/ws", user: "alice", answerPings: false)
            defer { socket.close() }
            // The client's last sign of life (the ping of connect()) lies within the connect.
            let connectTook = clock.now - connecting
            let start = clock.now
            let close = try await socket.expectClose(timeout: .seconds(5))
            let elapsed = clock.now - start
            #expect(close.code == 1001)
            #expect(close.reason == "Ping timeout")
            #expect(
                elapsed + connectTook >= .milliseconds(750),
                "closed \(elapsed) after a connect of \(connectTook): before two intervals passed")
            #expect(await eventually { node.gateway.statistics.active == 0 })
        }
    }
}
