import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import NIOCore
import Testing

@Suite("Connection limits, rate limit, frame size")
struct LimitTests {
    static func expectRefused(_ socket: RawWebSocket, message: String) async throws {
        let error = try await socket.nextMessage()
        #expect(error["type"]?.stringValue == "error")
        #expect(error["error"]?.stringValue == message)
        let close = try await socket.expectClose()
        #expect(close.code == 1013)
    }

    static func open(_ node: TestGateway, user: String) async throws -> RawWebSocket {
        let token = try await node.token(user)
        return try await RawWebSocket.connect(port: node.port, path: "/ws?token=\(token)")
    }

    @Test("per-user limit")
    func perUser() async throws {
        let limits = GatewayConfiguration(
            nodeID: "n", limits: .init(perUser: 2, perIP: 50, global: 100), statsIntervalSeconds: 0)
        try await TestGateway.with(gateway: limits) { node in
            let first = try await node.connect("/ws", user: "alice")
            let second = try await node.connect("/ws", user: "alice")
            let third = try await Self.open(node, user: "alice")
            try await Self.expectRefused(third, message: "Connection limit exceeded: at most 2 connections per user")
            let otherUser = try await node.connect("/ws", user: "bob")
            first.close()
            #expect(await eventually { node.gateway.statistics.active == 2 })
            let again = try await node.connect("/ws", user: "alice")
            [second, otherUser, again, third].forEach { $0.close() }
        }
    }

    @Test("per-IP limit")
    func perIP() async throws {
        let limits = GatewayConfiguration(
            nodeID: "n", limits: .init(perUser: 10, perIP: 3, global: 100), statsIntervalSeconds: 0)
        try await TestGateway.with(gateway: limits) { node in
            var sockets: [RawWebSocket] = []
            for index in 0..<3 { sockets.append(try await node.connect("/ws", user: "user-\(index)")) }
            let refused = try await Self.open(node, user: "user-9")
            try await Self.expectRefused(
                refused, message: "Connection limit exceeded: at most 3 connections per IP address")
            sockets.forEach { $0.close() }
            refused.close()
        }
    }

    @Test("global limit")
    func global() async throws {
        let limits = GatewayConfiguration(
            nodeID: "n", limits: .init(perUser: 10, perIP: 50, global: 4), statsIntervalSeconds: 0)
        try await TestGateway.with(gateway: limits) { node in
            var sockets: [RawWebSocket] = []
            for index in 0..<4 { sockets.append(try await node.connect("/ws", user: "user-\(index)")) }
            let refused = try await Self.open(node, user: "user-9")
            try await Self.expectRefused(
                refused,
                message: "Connection limit exceeded: the server accepts at most 4 connections"
            )
            sockets.forEach { $0.close() }
            refused.close()
        }
    }

    @Test("flooding gets 'Rate limit exceeded' and the connection stays open")
    func rateLimit() async throws {
        try await TestGateway.with(server: ServerConfiguration(rateLimit: 5)) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            // All 30 in one write: they arrive together however loaded the machine is.
            var burst = ByteBuffer()
            for index in 0..<30 {
                var frame = RawWebSocket.frame(opcode: 0x1, payload: Array(#"{"type":"ping","id":"p-\#(index)"}"#.utf8))
                burst.writeBuffer(&frame)
            }
            try await socket.sendRaw(burst)
            var pongs = 0
            var limited = 0
            for _ in 0..<30 {
                let message = try await socket.nextMessage()
                if message["type"]?.stringValue == "pong" { pongs += 1 }
                if message["error"]?.stringValue == "Rate limit exceeded" { limited += 1 }
            }
            #expect(limited > 0)
            #expect(pongs + limited == 30)
            // Still open: once the bucket refills a ping is answered again.
            let answered = try await eventually {
                try await socket.send(.object(["type": .string("ping")]))
                let reply = try await socket.nextMessage()
                return reply["type"]?.stringValue == "pong"
            }
            #expect(answered)
        }
    }

    @Test("a frame over the maximum size is closed with 1009")
    func oversizedFrame() async throws {
        try await TestGateway.with(server: ServerConfiguration(maxFrameSize: 1024)) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            let big = #"{"type":"ping","pad":""# + String(repeating: "x", count: 4000) + #""}"#
            try await socket.send(big)
            let close = try await socket.expectClose()
            #expect(close.code == 1009)
            #expect(await eventually { node.gateway.statistics.active == 0 })
        }
    }

    @Test("a fragmented message over the maximum size is closed with 1009")
    func oversizedFragmentedMessage() async throws {
        try await TestGateway.with(server: ServerConfiguration(maxFrameSize: 1024)) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            let chunk = Array(repeating: UInt8(ascii: "x"), count: 800)
            try await socket.sendFrame(opcode: 0x1, payload: chunk, fin: false)
            try await socket.sendFrame(opcode: 0x0, payload: chunk, fin: true)
            let close = try await socket.expectClose()
            #expect(close.code == 1009)
        }
    }
}
