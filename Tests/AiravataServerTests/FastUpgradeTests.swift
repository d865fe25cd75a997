import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import AiravataServer

/// WebSocket handshakes read from the connection's bytes (`IngestFastPath` with
/// `FastUpgradeHead`): the head parser accepts only the plainest handshakes and agrees with
/// NIO's parser on those; the node upgrades them as the general path does, frames sent with
/// the request included, and leaves every other request to the general path.
@Suite("HTTP: the fast WebSocket handshake path")
struct FastUpgradeTests {
    static let line = "GET /ws/user?token=a.b.c HTTP/1.1\r\n"

    static func parse(_ text: String) -> FastUpgradeHead.Outcome {
        Array(text.utf8).withUnsafeBytes { FastUpgradeHead.parse($0) }
    }

    static func text(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    @Test("a browser's handshake is read: its length, target and headers in order, values as NIO's parser gives them")
    func plainHead() {
        let head = Self.line + "Host: x:1\r\nUpgrade: websocket\r\nConnection:  Upgrade \t\r\nX-Empty:\r\n\r\n"
        guard case .head(let parsed) = Self.parse(head + "\u{81}\u{0}") else {
            Issue.record("not read: \(Self.parse(head))")
            return
        }
        let bytes = Array(head.utf8)
        #expect(parsed.length == bytes.count)
        #expect(Self.text(bytes, parsed.target) == "/ws/user?token=a.b.c")
        #expect(parsed.headers.map { Self.text(bytes, $0.name) } == ["Host", "Upgrade", "Connection", "X-Empty"])
        #expect(parsed.headers.map { Self.text(bytes, $0.value) } == ["x:1", "websocket", "Upgrade \t", ""])
    }

    @Test(
        "anything but the plainest handshake is left to NIO's parser",
        arguments: [
            "GET /api/v1/events HTTP/1.1\r\n\r\n",
            "POST /ws HTTP/1.1\r\n\r\n",
            "GET /ws HTTP/1.0\r\n\r\n",
            "GET /ws  HTTP/1.1\r\n\r\n",
            "GET /ws/projects/{p} HTTP/1.1\r\n\r\n",
            "GET /ws/projects/\"p\" HTTP/1.1\r\n\r\n",
            "GET /ws#frag HTTP/1.1\r\n\r\n",
            "GET /ws/caf\u{e9} HTTP/1.1\r\n\r\n",
            "GET /ws HTTP/1.1\nHost: x\r\n\r\n",
            line + "Content-Length: 0\r\n\r\n",
            line + "Transfer-Encoding: chunked\r\n\r\n",
            line + "X: a\r\n b\r\n\r\n",
            line + "X : a\r\n\r\n",
            line + ": a\r\n\r\n",
            line + "X: caf\u{e9}\r\n\r\n",
            line + "X: a\u{0}b\r\n\r\n",
            line + "X: a\r\n\r\r\n",
            line + String(repeating: "X: y\r\n", count: 65) + "\r\n",
            line + String(repeating: "X-Pad: 0123456789\r\n", count: 250) + "\r\n",
        ])
    func unusual(_ head: String) {
        #expect(Self.parse(head) == .unusual)
    }

    @Test("a head still arriving is incomplete, never decided on a part")
    func incomplete() {
        let head = Self.line + "Upgrade: websocket\r\nSec-WebSocket-Key: \(HandshakeTests.key)\r\n\r\n"
        let bytes = Array(head.utf8)
        for cut in 0..<bytes.count {
            let outcome = bytes[..<cut].withUnsafeBytes { FastUpgradeHead.parse($0) }
            #expect(outcome == .incomplete, "after \(cut) bytes: \(outcome)")
        }
    }

    @Test("on every head it reads (2,000 made from pieces, fixed seed), NIO's parser reads the same request")
    func agreesWithNIO() throws {
        var random = HTTPPipeliningTests.SplitMix(seed: 0x0B5E)
        let targets = [
            "/ws", "/ws/user", "/ws/projects/p-1?token=a.b_c~d", "/ws/system?x=%20y&z=1+2", "/ws/tasks/t:1@x!$'()*,;=",
            "/ws/experiments/e?session=s&cursor=1-2", "/wsx", "/ws//user?",
        ]
        let pieces = [
            "Host: localhost\r\n", "Upgrade: websocket\r\n", "Connection: Upgrade\r\n",
            "connection:keep-alive, upgrade\r\n",
            "Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Key: \(HandshakeTests.key)\r\n", "X-Empty:\r\n",
            "X-Tab:\tv\t\r\n", "Transfer-Encoding: chunked\r\n", "Content-Length: 0\r\n", " Folded: x\r\n", "X: y\n",
            "X-Sp : v\r\n", "User-Agent: t/1 (x; y)\r\n", "X: \u{7f}\r\n", "Authorization: Bearer a.b.c\r\n",
            "Origin: http://localhost:8080\r\n", "Sec-WebSocket-Protocol: a, b\r\n",
        ]
        var accepted = 0
        for _ in 0..<2_000 {
            var head = "GET \(targets[random.next(targets.count)]) HTTP/1.1\r\n"
            for _ in 0..<random.next(6) { head += pieces[random.next(pieces.count)] }
            head += "\r\n"
            guard case .head(let parsed) = Self.parse(head) else { continue }
            accepted += 1
            let bytes = Array(head.utf8)
            let nio = try #require(
                try FastIngestTests.nioReads(bytes), "NIO reads no request from \(head.debugDescription)")
            #expect(nio.head.method == .GET && nio.head.version == .http1_1, "\(head.debugDescription)")
            #expect(nio.head.uri == Self.text(bytes, parsed.target), "\(head.debugDescription)")
            #expect(nio.body == 0, "\(head.debugDescription)")
            let ours = parsed.headers.map { "\(Self.text(bytes, $0.name)): \(Self.text(bytes, $0.value))" }
            #expect(nio.head.headers.map { "\($0.name): \($0.value)" } == ours, "\(head.debugDescription)")
        }
        #expect(accepted > 100, "too few heads accepted to compare: \(accepted)")
    }

    /// The count of handshakes the node read itself.
    static func fastUpgrades(_ node: TestGateway) async throws -> Int {
        let metrics = try await node.http.request(method: "GET", path: "/metrics").bodyString
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("airavata_http_fast_upgrades_total ") }
        return line.flatMap { Int($0.split(separator: " ")[1]) } ?? -1
    }

    @Test(
        "a handshake sent in pieces, a frame in its last write, is upgraded alike on both paths",
        arguments: [true, false])
    func inPieces(fast: Bool) async throws {
        var server = ServerConfiguration()
        server.fastIngest = fast
        try await TestGateway.with(server: server) { node in
            let token = try await node.token("alice")
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let request = Array(HandshakeTests.upgrade(path: "/ws/user?token=\(token)").utf8)
            let ping = RawWebSocket.frame(opcode: 0x1, payload: Array(#"{"type":"ping"}"#.utf8))
            // Cut inside the request line, inside a header and just before the blank line.
            let cuts = [3, 9, request.count / 2, request.count - 2]
            var start = 0
            for cut in cuts {
                try await socket.send(Array(request[start..<cut]))
                start = cut
            }
            try await socket.send(Array(request[start...]) + Array(ping.readableBytesView))
            let text = try await socket.read(until: #""type":"pong""#)
            #expect(text.hasPrefix("HTTP/1.1 101 "), "\(text.prefix(200))")
            #expect(text.contains(#""action":"connected""#), "\(text)")
            #expect(text.contains(#""type":"pong""#), "the ping sent with the request went unanswered: \(text)")
            #expect(try await Self.fastUpgrades(node) == (fast ? 1 : 0))
        }
    }

    @Test("a handshake the fast path does not read (a header with a body) is upgraded by the general path")
    func unusualIsUpgraded() async throws {
        try await TestGateway.with { node in
            let token = try await node.token("alice")
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let request = HandshakeTests.upgrade(
                path: "/ws/user?token=\(token)", extra: HandshakeTests.validKey + ["Content-Length: 0"])
            try await socket.send(request)
            let text = try await socket.read(until: "connected")
            #expect(text.hasPrefix("HTTP/1.1 101 "), "\(text.prefix(200))")
            #expect(try await Self.fastUpgrades(node) == 0)
        }
    }

    @Test("a handshake the checks refuse is answered by the general path, once, then the close")
    func refusedByGeneralPath() async throws {
        try await TestGateway.with { node in
            let request = HandshakeTests.upgrade(path: "/ws/nowhere/x/y")
            let text = try await HandshakeTests.expectRefused(request, status: "400", on: node)
            #expect(text.contains("No WebSocket endpoint"), "\(text)")
            #expect(try await Self.fastUpgrades(node) == 0)
        }
    }
}
