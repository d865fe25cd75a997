import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import AiravataServer

/// Producers' POSTs read from the connection's bytes (`IngestFastPath`): the head parser
/// accepts only the plainest requests and agrees with NIO's on those; the node answers
/// every request exactly as the general path does, hands over what it does not read itself,
/// and keeps the connection's clocks.
@Suite("HTTP: the fast ingestion path")
struct FastIngestTests {
    static let line = "POST /api/v1/events HTTP/1.1\r\n"

    static func parse(_ text: String) -> FastIngestHead.Outcome {
        Array(text.utf8).withUnsafeBytes { FastIngestHead.parse($0) }
    }

    @Test("a plain head is read, with its length, content length and token")
    func plainHead() {
        let head = Self.line + "Host: x\r\nAuthorization:  Bearer t.k.n \t\r\nContent-Length: 12\r\n\r\n"
        guard case .head(let parsed) = Self.parse(head + "{\"a\":1}") else {
            Issue.record("not read: \(Self.parse(head))")
            return
        }
        #expect(parsed.length == head.utf8.count)
        #expect(parsed.contentLength == 12)
        let bytes = Array(head.utf8)
        #expect(parsed.authorization.map { String(decoding: bytes[$0], as: UTF8.self) } == "Bearer t.k.n")
    }

    @Test(
        "anything but the plainest request is left to NIO's parser",
        arguments: [
            "GET /api/v1/events HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST /api/v1/events?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST /api/v1/events HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
            line + "Content-Length: 1\r\nContent-Length: 1\r\n\r\n",
            line + "Content-Length: +1\r\n\r\n",
            line + "Content-Length: 1234567890\r\n\r\n",
            line + "Content-Length:\r\n\r\n",
            line + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            line + "Content-Length: 5\r\nConnection: close\r\n\r\n",
            line + "Content-Length: 5\r\nConnection: keep-alive, Upgrade\r\n\r\n",
            line + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n",
            line + "Content-Length: 5\r\nUpgrade: websocket\r\n\r\n",
            line + "Content-Length: 5\r\nTE: trailers\r\n\r\n",
            line + "Content-Length: 5\r\nProxy-Connection: close\r\n\r\n",
            line + "Content-Length: 5\t\r\n\r\n",
            line + "Content-Length:\t5\r\n\r\n",
            line + "Content-Length: 5\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
            line + "X: a\r\n b\r\nContent-Length: 5\r\n\r\n",
            line + "Content-Length : 5\r\n\r\n",
            line + "Content-Length: 5\nX: y\r\n\r\n",
            line + "Content-Length: 5\r\nX: caf\u{e9}\r\n\r\n",
            line + "Content-Length: 5\r\nX: a\u{0}b\r\n\r\n",
            line + "Content-Length: 5\r\n: empty name\r\n\r\n",
            line + "Host: x\r\n\r\n",
            line + "Content-Length: 5\r\n\r\r\n",
            line + String(repeating: "X-Pad: 0123456789\r\n", count: 1_000) + "Content-Length: 0\r\n\r\n",
            line + String(repeating: "X: y\r\n", count: 65) + "Content-Length: 0\r\n\r\n",
        ])
    func unusual(_ head: String) {
        #expect(Self.parse(head) == .unusual)
    }

    @Test("a head still arriving is incomplete, never decided on a part")
    func incomplete() {
        let head = Self.line + "Authorization: Bearer x\r\nContent-Length: 2\r\n\r\n"
        let bytes = Array(head.utf8)
        for cut in 0..<bytes.count {
            let outcome = bytes[..<cut].withUnsafeBytes { FastIngestHead.parse($0) }
            #expect(outcome == .incomplete, "after \(cut) bytes: \(outcome)")
        }
        #expect(Self.parse("POST /api/v1/events HTTP/1.1\r\nX: y") == .incomplete)
        #expect(Self.parse("POST /api/v2") == .unusual)
    }

    /// What NIO's parser reads from `bytes`: the first request's head and body length.
    static func nioReads(_ bytes: [UInt8]) throws -> (head: HTTPRequestHead, body: Int)? {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        var head: HTTPRequestHead?
        var body = 0
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let value): head = value
            case .body(let chunk): body += chunk.readableBytes
            case .end: return head.map { ($0, body) }
            }
        }
        return nil
    }

    @Test("on every head it reads (2,000 made from pieces, fixed seed), NIO's parser reads the same request")
    func agreesWithNIO() throws {
        var random = HTTPPipeliningTests.SplitMix(seed: 0x5EED)
        let pieces = [
            "Host: localhost\r\n", "Authorization: Bearer abc.def\r\n", "authorization:Bearer\tx\r\n",
            "Content-Type: application/json\r\n", "Connection: keep-alive\r\n", "Connection: close\r\n",
            "X-Empty:\r\n", "X-Tab:\tv\t\r\n", "Transfer-Encoding: chunked\r\n", "Content-Length: 3\r\n",
            "content-length: 03\r\n", "Content-Length: 4\r\n", " Folded: x\r\n", "X: y\n", "Expect: 100-continue\r\n",
            "X-Sp : v\r\n", "User-Agent: t/1 (x; y)\r\n", "X: \u{7f}\r\n", "Proxy-Connection: close\r\n",
            "Content-Length: 4\t\r\n", "Content-Length:  4  \r\n", "Keep-Alive: timeout=5\r\n",
        ]
        var accepted = 0
        for _ in 0..<2_000 {
            var head = Self.line
            for _ in 0..<random.next(5) { head += pieces[random.next(pieces.count)] }
            head += "\r\n"
            guard case .head(let parsed) = Self.parse(head) else { continue }
            accepted += 1
            let bytes = Array((head + String(repeating: "x", count: parsed.contentLength)).utf8)
            let nio = try #require(try Self.nioReads(bytes), "NIO reads no request from \(head.debugDescription)")
            #expect(nio.head.method == .POST && nio.head.uri == "/api/v1/events" && nio.head.version == .http1_1)
            #expect(nio.body == parsed.contentLength, "\(head.debugDescription)")
            #expect(nio.head.isKeepAlive, "\(head.debugDescription)")
            let token = parsed.authorization.map { String(decoding: bytes[$0], as: UTF8.self) }
            #expect(nio.head.headers["authorization"].first == token, "\(head.debugDescription)")
        }
        #expect(accepted > 100, "too few heads accepted to compare: \(accepted)")
    }

    /// A connection's exchange: every request in one write, the answers read until `count`
    /// arrived or the node closed; status lines and bodies with ids and cursors blanked.
    static func exchange(
        fast: Bool, directWrites: Bool = true, _ requests: (String) -> String, count: Int
    ) async throws -> (answers: [String], fastCount: Int, directCount: Int) {
        var server = ServerConfiguration()
        server.fastIngest = fast
        server.directWrites = directWrites
        return try await TestGateway.with(server: server) { node in
            let token = try await node.serviceToken()
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            try await socket.send(requests(token))
            let answers = try await HTTPPipeliningTests.responses(socket, count: count)
            let blanked = answers.map { status, body in
                status + " " + body.replacing(/\d{10,}/, with: "N")
            }
            let metrics = try await node.http.request(method: "GET", path: "/metrics").bodyString
            func counter(_ name: String) -> Int {
                let line = metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }
                return line.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
            }
            return (
                blanked, counter("airavata_http_fast_ingest_total"), counter("airavata_http_direct_answers_total")
            )
        }
    }

    @Test(
        "a producer's kept-alive connection gets its answers from its third on by direct writes, in order, the same bytes"
    )
    func directAnswers() async throws {
        let event = Events.system(note: "direct").jsonString
        // Answers that wait for the bus and answers made at once (a body that is no JSON),
        // interleaved: an answer written directly must never overtake one NIO still holds.
        let requests = { (token: String) in
            (0..<60).map { index in
                HTTPPipeliningTests.post(index % 7 == 3 ? "{bad" : event, token: token)
            }.joined()
        }
        let direct = try await Self.exchange(fast: true, requests, count: 60)
        let throughNIO = try await Self.exchange(fast: true, directWrites: false, requests, count: 60)
        #expect(direct.answers.count == 60, "\(direct.answers)")
        #expect(direct.answers == throughNIO.answers)
        #expect(direct.answers.filter { $0.hasPrefix("HTTP/1.1 400") }.count == 9)
        #expect(direct.directCount >= 50, "answers written directly: \(direct.directCount) of 58")
        #expect(throughNIO.directCount == 0)
    }

    @Test("a pipelined mix of requests gets the same answers on both paths, the plain POSTs on the fast one")
    func sameAnswers() async throws {
        let event = Events.system(note: "fast").jsonString
        let requests = { (token: String) in
            let post = HTTPPipeliningTests.post(event, token: token)
            return post + post + HTTPPipeliningTests.post("{bad", token: token) + post
                + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post
                + "POST /api/v1/events HTTP/1.1\r\nAuthorization: Bearer \(token)\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "\(String(event.utf8.count, radix: 16))\r\n\(event)\r\n0\r\n\r\n"
                + HTTPPipeliningTests.post(event, token: "not.a.token")
        }
        let fast = try await Self.exchange(fast: true, requests, count: 8)
        let general = try await Self.exchange(fast: false, requests, count: 8)
        #expect(fast.answers == general.answers)
        #expect(fast.answers.count == 8, "\(fast.answers)")
        #expect(fast.answers.last?.hasPrefix("HTTP/1.1 401") == true, "\(fast.answers)")
        #expect(fast.answers.first?.hasPrefix("HTTP/1.1 202") == true, "\(fast.answers)")
        #expect(fast.fastCount == 4, "plain POSTs answered on the fast path: \(fast.fastCount) of 4")
        #expect(general.fastCount == 0)
    }

    @Test("a connection's first POST with a whole body and a bad token: checked, then refused as on the general path")
    func refusedToken() async throws {
        try await TestGateway.with { node in
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            try await socket.send(HTTPPipeliningTests.post(Events.system(note: "x").jsonString, token: "not.a.token"))
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(10))
            #expect(closed)
            #expect(HTTPPipeliningTests.split(text).map(\.0) == ["HTTP/1.1 401 Unauthorized"], "\(text)")
            let metrics = try await node.http.request(method: "GET", path: "/metrics").bodyString
            #expect(metrics.contains("airavata_ingest_rejected_total{reason=\"unauthenticated\"} 1\n"), "counted once")
        }
    }

    /// One request after another on one connection, each sent once the one before is
    /// answered; the status lines of the answers.
    static func oneByOne(_ socket: RawTCP, _ requests: [String]) async throws -> [String] {
        var statuses: [String] = []
        for (index, request) in requests.enumerated() {
            try await socket.send(request)
            statuses = try await HTTPPipeliningTests.responses(socket, count: index + 1).map(\.status)
        }
        return statuses
    }

    @Test("a token proven on a connection stands for those bytes only: another token on it is judged afresh")
    func tokenChangesOnAConnection() async throws {
        try await TestGateway.with { node in
            let token = try await node.serviceToken()
            let event = Events.system(note: "x").jsonString
            let post = { (token: String) in HTTPPipeliningTests.post(event, token: token) }
            // The same length and all but one byte the same: a signature that is not the one proven.
            var tampered = Array(token.utf8)
            tampered[tampered.count - 2] =
                tampered[tampered.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            let first = try await RawTCP.connect(port: node.port)
            defer { first.close() }
            let statuses = try await Self.oneByOne(
                first, [post(token), post(token), post(String(decoding: tampered, as: UTF8.self))])
            #expect(statuses == ["HTTP/1.1 202 Accepted", "HTTP/1.1 202 Accepted", "HTTP/1.1 401 Unauthorized"])

            // A valid token of a subscriber, not a producer, after a producer's.
            let subscriber = try await node.token("alice", roles: ["admin"])
            let second = try await RawTCP.connect(port: node.port)
            defer { second.close() }
            #expect(
                try await Self.oneByOne(second, [post(token), post(subscriber)])
                    == ["HTTP/1.1 202 Accepted", "HTTP/1.1 403 Forbidden"])
        }
    }

    @Test("a token proven on a connection is refused there once it expires")
    func provenTokenExpires() async throws {
        try await TestGateway.with { node in
            // Valid for 10 to 11 more seconds, the verifier's 30 s of leeway included: time for
            // two requests on a loaded machine.
            let issued = Date().addingTimeInterval(-80)
            let token = try await TokenIssuer(hmacSecret: TestGateway.secret).token(
                subject: "producer", roles: ["service"], lifetime: 60, now: issued)
            let expires = Date(timeIntervalSince1970: issued.timeIntervalSince1970.rounded(.down) + 60 + 30)
            let event = Events.system(note: "x").jsonString
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            // Twice: the first is proven by a signature check, the second by what the node
            // remembers of it, which the connection then keeps.
            let post = HTTPPipeliningTests.post(event, token: token)
            let before = try await Self.oneByOne(socket, [post, post])
            try #require(before == ["HTTP/1.1 202 Accepted", "HTTP/1.1 202 Accepted"], "still valid: \(before)")
            // What is tested is the passing of time: the token's own expiry.
            try await Task.sleep(for: .seconds(max(expires.timeIntervalSinceNow, 0) + 0.5))
            try await socket.send(post)
            let after = try await HTTPPipeliningTests.responses(socket, count: 3).map(\.status)
            #expect(after == before + ["HTTP/1.1 401 Unauthorized"])
        }
    }

    @Test("a request that stops halfway on the fast path is answered 408 at the request timeout")
    func requestClock() async throws {
        var server = ServerConfiguration()
        // The clock runs from accept too: under a loaded CI run, half a second between the
        // connect and the first bytes was not always enough.
        server.requestTimeoutSeconds = 2
        try await TestGateway.with(server: server) { node in
            let token = try await node.serviceToken()
            let event = Events.system(note: "first").jsonString
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let post = HTTPPipeliningTests.post(event, token: token)
            try await socket.send(post + String(post.dropLast(10)))
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(10))
            #expect(closed)
            #expect(
                HTTPPipeliningTests.split(text).map(\.0) == ["HTTP/1.1 202 Accepted", "HTTP/1.1 408 Request Timeout"])
        }
    }

    @Test("a kept-alive connection idle after a fast answer is closed at the idle timeout")
    func idleClock() async throws {
        var server = ServerConfiguration()
        server.idleTimeoutSeconds = 0.5
        server.requestTimeoutSeconds = 30
        try await TestGateway.with(server: server) { node in
            let token = try await node.serviceToken()
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            try await socket.send(HTTPPipeliningTests.post(Events.system(note: "one").jsonString, token: token))
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(10))
            #expect(closed, "the idle connection stayed open")
            #expect(HTTPPipeliningTests.split(text).map(\.0) == ["HTTP/1.1 202 Accepted"])
        }
    }

    /// How the second request of `idleAfterAnswerAtOnce` reaches its answer.
    enum AnsweredAtOnce: String, CaseIterable, CustomTestStringConvertible {
        case general
        case fast
        /// Read by the fast path, handed to the general path within the same read.
        case handedOver

        var testDescription: String { rawValue }
    }

    /// An answer made at once, in the read that brought its request (a 400 for a body that
    /// is no JSON), used to start the request clock at the end of that read, on every path,
    /// so that the idle connection got a 408 instead of its quiet close.
    @Test(
        "a kept-alive connection idle after an answer made at once is closed at the idle timeout, without a 408",
        arguments: AnsweredAtOnce.allCases)
    func idleAfterAnswerAtOnce(path: AnsweredAtOnce) async throws {
        var server = ServerConfiguration()
        server.fastIngest = path != .general
        // The request clock also runs from accept, so it leaves the client time to send its
        // first request on a loaded machine; the idle clock is well beyond it.
        server.requestTimeoutSeconds = 2
        server.idleTimeoutSeconds = 5
        try await TestGateway.with(server: server) { node in
            let token = try await node.serviceToken()
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            // The first proves the token, so that the second is answered within its read.
            try await socket.send(HTTPPipeliningTests.post(Events.system(note: "one").jsonString, token: token))
            _ = try await socket.read(until: "]}\n")
            let started = ContinuousClock.now
            let bad =
                path == .handedOver
                ? "POST /api/v1/events HTTP/1.1\r\nAuthorization: Bearer \(token)\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n4\r\n{bad\r\n0\r\n\r\n"
                : HTTPPipeliningTests.post("{bad", token: token)
            try await socket.send(bad)
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(10))
            #expect(closed, "the idle connection stayed open")
            #expect(HTTPPipeliningTests.split(text).map(\.0).contains("HTTP/1.1 400 Bad Request"), "\(text)")
            #expect(!text.contains("408"), "closed with a 408 at the request timeout: \(text)")
            #expect(ContinuousClock.now - started >= .seconds(4), "closed before the idle timeout")
        }
    }
}
