import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Foundation
import NIOCore
import Testing

/// Opening handshakes that must be refused, each with exactly one answer and the close,
/// sent byte for byte as an attacker (or a broken client) would.
@Suite("WebSocket handshake checks (RFC 6455 §4.2.1)")
struct HandshakeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="
    static let validKey = ["Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: \(key)"]

    static func upgrade(
        method: String = "GET", path: String = "/ws", version: String = "HTTP/1.1",
        extra: [String] = ["Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: \(key)"],
        connection: String = "Upgrade"
    ) -> String {
        var lines = ["\(method) \(path) \(version)", "Host: localhost", "Upgrade: websocket"]
        if !connection.isEmpty { lines.append("Connection: \(connection)") }
        return (lines + extra).joined(separator: "\r\n") + "\r\n\r\n"
    }

    /// Sends `request` and expects one response with `status`, then the server's close.
    static func expectRefused(_ request: String, status: String, on node: TestGateway) async throws -> String {
        let socket = try await RawTCP.connect(port: node.port)
        defer { socket.close() }
        try await socket.send(request)
        let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
        #expect(text.hasPrefix("HTTP/1.1 \(status)"), "expected one \(status) answer, got: \(text.prefix(300))")
        #expect(closed, "expected the server to close after its \(status); it kept the connection open")
        #expect(text.components(separatedBy: "HTTP/1.1 ").count == 2, "expected exactly one response: \(text)")
        return text
    }

    @Test("version 8: one 426 naming version 13, then the close (it used to spin a core forever)")
    func wrongVersion() async throws {
        try await TestGateway.with { node in
            let request = Self.upgrade(extra: ["Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: \(Self.key)"])
            let text = try await Self.expectRefused(request, status: "426", on: node)
            #expect(text.lowercased().contains("sec-websocket-version: 13"), "\(text)")
            // The node is still well: a real client connects.
            let socket = try await node.connect("/ws/user", user: "alice")
            socket.close()
        }
    }

    @Test("missing, duplicated or malformed keys, a POST, HTTP/1.0, no Connection: Upgrade, a bad path: 400")
    func malformed() async throws {
        try await TestGateway.with { node in
            let cases: [(String, String)] = [
                ("missing key", Self.upgrade(extra: ["Sec-WebSocket-Version: 13"])),
                (
                    "duplicated key",
                    Self.upgrade(extra: [
                        "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: \(Self.key)", "Sec-WebSocket-Key: \(Self.key)",
                    ])
                ),
                (
                    "key of 4 bytes",
                    Self.upgrade(extra: ["Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: AAAAAA=="])
                ),
                ("key not base64", Self.upgrade(extra: ["Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: %%%%"])),
                ("POST", Self.upgrade(method: "POST")),
                ("HTTP/1.0", Self.upgrade(version: "HTTP/1.0")),
                ("no Connection: Upgrade", Self.upgrade(connection: "")),
                ("bad path", Self.upgrade(path: "/nowhere")),
                ("unknown resource", Self.upgrade(path: "/ws/planets/p-1")),
            ]
            for (name, request) in cases {
                let text = try await Self.expectRefused(request, status: "400", on: node)
                #expect(text.contains("\"error\""), "\(name): expected a JSON error body, got \(text)")
            }
        }
    }

    @Test("a refused upgrade on a kept-alive connection that served a request first is answered too")
    func refusedAfterPlainRequest() async throws {
        try await TestGateway.with { node in
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            try await socket.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let first = try await socket.read(until: "\"ok\"")
            #expect(first.hasPrefix("HTTP/1.1 200"), "\(first)")
            try await socket.send(Self.upgrade(extra: ["Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: \(Self.key)"]))
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
            #expect(text.contains("HTTP/1.1 426"), "\(text)")
            #expect(closed)
        }
    }

    @Test("a request head that trickles in is cut off with 408 at the request timeout (slowloris)")
    func slowHead() async throws {
        var server = ServerConfiguration()
        // Long enough for a loaded machine to send the first bytes after connecting.
        server.requestTimeoutSeconds = 2
        try await TestGateway.with(server: server) { node in
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            try await socket.send("GET /heal")
            let clock = ContinuousClock()
            let start = clock.now
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
            #expect(text.hasPrefix("HTTP/1.1 408"), "\(text)")
            #expect(closed)
            #expect(clock.now - start < .seconds(8), "closed after \(clock.now - start), timeout is 2 s")
        }
    }

    @Test("a silent connection is closed at the request timeout; an idle kept-alive one at the idle timeout")
    func silentAndIdle() async throws {
        var server = ServerConfiguration()
        server.requestTimeoutSeconds = 2
        server.idleTimeoutSeconds = 0.5
        try await TestGateway.with(server: server) { node in
            let silent = try await RawTCP.connect(port: node.port)
            defer { silent.close() }
            let (_, silentClosed) = try await silent.readUntilClosed(timeout: .seconds(15))
            #expect(silentClosed, "a connection that never sent a byte stayed open")

            let kept = try await RawTCP.connect(port: node.port)
            defer { kept.close() }
            try await kept.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let (text, keptClosed) = try await kept.readUntilClosed(timeout: .seconds(15))
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
            #expect(text.lowercased().contains("connection: keep-alive"), "\(text)")
            #expect(keptClosed, "an idle kept-alive connection stayed open")
        }
    }

    /// A kept-alive connection that has been answered once: it holds a pending slot.
    static func holder(_ node: TestGateway, forwardedFor: String? = nil) async throws -> RawTCP {
        let socket = try await RawTCP.connect(port: node.port)
        let forwarded = forwardedFor.map { "X-Forwarded-For: \($0)\r\n" } ?? ""
        try await socket.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\(forwarded)\r\n")
        let answer = try await socket.read(until: "\"ok\"")
        #expect(answer.hasPrefix("HTTP/1.1 200"), "expected the holder to be served: \(answer)")
        return socket
    }

    @Test("connections that never authenticate are capped per address; admitted WebSockets do not count")
    func pendingCap() async throws {
        var server = ServerConfiguration()
        server.pendingConnections = .init(total: 100, perIP: 3)
        try await TestGateway.with(server: server) { node in
            // Three admitted WebSockets first: once admitted they leave the count.
            var sockets: [RawWebSocket] = []
            for user in ["u1", "u2", "u3"] { sockets.append(try await node.connect("/ws/user", user: user)) }
            defer { for socket in sockets { socket.close() } }
            var holders: [RawTCP] = []
            for _ in 0..<3 { holders.append(try await Self.holder(node)) }
            defer { for holder in holders { holder.close() } }
            // The fourth unauthenticated one is closed at once, without an answer.
            let fourth = try await RawTCP.connect(port: node.port)
            let (text, closed) = try await fourth.readUntilClosed(timeout: .seconds(15))
            #expect(closed, "a fourth pending connection from one address was let in")
            #expect(text.isEmpty, "\(text)")
            // Once one holder leaves, clients get in again.
            holders.removeFirst().close()
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(5)
            var admitted: RawWebSocket?
            while admitted == nil, clock.now < deadline {
                admitted = try? await node.connect("/ws/user", user: "alice")
            }
            let socket = try #require(admitted, "no WebSocket got in after a pending slot was freed")
            socket.close()
        }
    }

    @Test("behind a trusted proxy the per-address cap counts the forwarded client, not the proxy")
    func pendingCapBehindProxy() async throws {
        var server = ServerConfiguration()
        server.trustedProxies = try TrustedProxies("127.0.0.1")
        server.pendingConnections = .init(total: 100, perIP: 2)
        try await TestGateway.with(server: server) { node in
            var holders: [RawTCP] = []
            for _ in 0..<2 { holders.append(try await Self.holder(node, forwardedFor: "203.0.113.9")) }
            defer { for holder in holders { holder.close() } }
            let third = try await RawTCP.connect(port: node.port)
            defer { third.close() }
            try await third.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n")
            let (text, closed) = try await third.readUntilClosed(timeout: .seconds(15))
            #expect(closed && !text.contains("HTTP/1.1"), "a third connection for one forwarded client got: \(text)")
            // Another client behind the same proxy, and the proxy itself, are not held up.
            let other = try await Self.holder(node, forwardedFor: "203.0.113.10")
            other.close()
            let direct = try await Self.holder(node)
            direct.close()
        }
    }

    @Test("a second request on a kept-alive connection whose body stalls gets 408 at the request timeout")
    func stalledSecondRequest() async throws {
        var server = ServerConfiguration()
        server.requestTimeoutSeconds = 2
        server.idleTimeoutSeconds = 30
        try await TestGateway.with(server: server) { node in
            let socket = try await Self.holder(node)
            defer { socket.close() }
            try await socket.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n")
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
            #expect(text.contains("HTTP/1.1 408"), "\(text)")
            #expect(closed, "a stalled second request kept its connection")
        }
    }

    @Test("a request that stalls after a long idle pause still gets 408 at the request timeout, not the idle one")
    func stalledAfterIdlePause() async throws {
        // The handler keeps one timer task for both clocks and moves deadlines lazily: after
        // the pause its task waits for the far idle deadline, and a request must pull it in.
        var server = ServerConfiguration()
        server.requestTimeoutSeconds = 1
        server.idleTimeoutSeconds = 30
        try await TestGateway.with(server: server) { node in
            let socket = try await Self.holder(node)
            defer { socket.close() }
            // The pause itself is the scenario: longer than the request timeout.
            try await Task.sleep(for: .milliseconds(1500))
            let clock = ContinuousClock()
            let start = clock.now
            try await socket.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n")
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(10))
            #expect(text.contains("HTTP/1.1 408"), "\(text)")
            #expect(closed, "a stalled request after a pause kept its connection")
            #expect(clock.now - start < .seconds(6), "cut off after \(clock.now - start); request timeout is 1 s")
        }
    }

    @Test("the answer is RFC 6455's accept value; a frame sent in the request's own write is read, not dropped")
    func frameInTheRequestsWrite() async throws {
        try await TestGateway.with { node in
            let token = try await node.token("alice")
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            // A client that does not wait for the 101: the HTTP decoder must hand these bytes
            // on to the WebSocket decoder when it leaves the pipeline.
            var bytes = Array(Self.upgrade(path: "/ws/user?token=\(token)").utf8)
            let ping = RawWebSocket.frame(opcode: 0x1, payload: Array(#"{"type":"ping"}"#.utf8))
            bytes += ping.readableBytesView
            try await socket.send(bytes)
            let text = try await socket.read(until: #""type":"pong""#)
            // The example of RFC 6455 §1.3: this key is answered with this value.
            #expect(text.hasPrefix("HTTP/1.1 101 "), "\(text.prefix(200))")
            #expect(text.lowercased().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "\(text)")
            #expect(text.contains(#""type":"pong""#), "the ping sent with the request went unanswered: \(text)")
            #expect(text.contains("connected"), "the greeting should come before the pong: \(text)")
        }
    }

    @Test("a body sent with a valid handshake is dropped and the upgrade is made at the request's end")
    func handshakeWithBody() async throws {
        try await TestGateway.with { node in
            let token = try await node.token("alice")
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let request = Self.upgrade(path: "/ws/user?token=\(token)", extra: Self.validKey + ["Content-Length: 5"])
            try await socket.send(request + "hello")
            let text = try await socket.read(until: "connected")
            #expect(text.hasPrefix("HTTP/1.1 101 "), "\(text.prefix(200))")
            #expect(text.contains(#""action":"connected""#), "\(text)")
            #expect(!text.contains("hello"), "\(text)")
        }
    }

    @Test("an upgrade on a kept-alive connection whose request never ends is closed at the request timeout")
    func stalledUpgrade() async throws {
        var server = ServerConfiguration()
        server.requestTimeoutSeconds = 2
        server.idleTimeoutSeconds = 30
        try await TestGateway.with(server: server) { node in
            let socket = try await Self.holder(node)
            defer { socket.close() }
            try await socket.send(Self.upgrade(extra: Self.validKey + ["Content-Length: 5"]))
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
            #expect(!text.contains("101"), "\(text)")
            #expect(closed, "an upgrade request without its body kept the connection")
        }
    }

    @Test("a client that pipelines requests and never reads the answers is cut off, not buffered without end")
    func pipelinedNonReader() async throws {
        // Timeouts far beyond the test: only the writability check may end the connection.
        var server = ServerConfiguration()
        server.requestTimeoutSeconds = 300
        server.idleTimeoutSeconds = 300
        try await TestGateway.with(server: server) { node in
            let socket = try await RawTCP.connect(port: node.port, reading: false, receiveBufferBytes: 4096)
            defer { socket.close() }
            // `/` is a small answer that costs the node little: what piles up is bytes, not work.
            let one = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
            // Never reading, this client only learns of the close when a write of its own
            // fails: after its requests it keeps sending empty lines (allowed between
            // requests) until then, or until the deadline.
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(30)
            do {
                for _ in 0..<40 { try await socket.send(String(repeating: one, count: 500)) }
                while socket.isOpen, clock.now < deadline {
                    try await socket.send("\r\n")
                    try await Task.sleep(for: .milliseconds(20))
                }
            } catch {
                // The node hung up: what this test waits for.
            }
            #expect(!socket.isOpen, "the node kept the connection of a client that never read its 20,000 answers")
        }
    }

    @Test("ingestion checks the token on the request head: no body is read for a missing or bad token")
    func ingestionTokenOnHead() async throws {
        try await TestGateway.with { node in
            for authorization in ["", "Authorization: Bearer not-a-token\r\n"] {
                let socket = try await RawTCP.connect(port: node.port)
                defer { socket.close() }
                // Announce a large body and send none of it: the answer must come anyway.
                try await socket.send(
                    "POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\n\(authorization)"
                        + "Content-Type: application/json\r\nContent-Length: 900000\r\n\r\n")
                let text = try await socket.read(until: "\r\n\r\n", timeout: .seconds(5))
                #expect(text.hasPrefix("HTTP/1.1 401"), "expected 401 before any body byte, got: \(text)")
            }
            // A producer with a good token is served as before.
            let accepted = try await node.publish(Events.experiment(id: "exp-1", project: "p-1", owner: "alice"))
            #expect(accepted["accepted"] == .integer(1), "\(accepted)")
        }
    }
}
