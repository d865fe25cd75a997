import AiravataClient
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Foundation
import Testing

/// A connection the node ends after its last answer ends with the stream's end, not a reset,
/// even when the client sent more than the node read: a reset would discard the answers
/// still in the node's kernel, on their way to the client.
@Suite("HTTP: the last answers before a close arrive whole")
struct LingeringCloseTests {
    /// Requests whose answers are large (the dashboard's page, about 16 KB, made once), so
    /// that a few fill the client's small receive buffer and the node's send buffer behind it.
    static func largeAnswers(_ count: Int) -> String {
        String(repeating: "GET /dashboard HTTP/1.1\r\nHost: localhost\r\n\r\n", count: count)
    }

    /// Waits until the node's metrics count `reason` among refused HTTP requests.
    /// Generous: each answer here is made by a task, and on a loaded machine each waits.
    static func awaitRefusal(_ reason: String, node: TestGateway) async throws -> Bool {
        try await eventually(within: .seconds(60)) {
            let metrics = try await node.http.request(method: "GET", path: "/metrics").bodyString
            return metrics.contains("airavata_http_refused_total{reason=\"\(reason)\"} 1")
        }
    }

    /// The node's bounds on a closing connection, raised: a client that starts reading late
    /// (after the node decided to close, a metrics poll later on a loaded machine) is no race.
    static var patient: ServerConfiguration {
        var server = ServerConfiguration()
        server.finalAnswerGraceSeconds = 60
        server.lingerSeconds = 60
        return server
    }

    @Test("a pipelining client that reads late gets every answer written, the last saying close, then the end")
    func unreadAnswers() async throws {
        try await TestGateway.with(server: Self.patient) { node in
            // The client reads nothing at first: the node's answers back up, and the answer
            // that finds its buffers full is its last. The requests behind it stay unread in
            // the node's kernel.
            let socket = try await RawTCP.connect(port: node.port, reading: false, receiveBufferBytes: 4096)
            defer { socket.close() }
            // More than the node reads before its buffers fill (it stops reading while requests
            // wait their turn), and few enough for the node's kernel to take at once.
            try await socket.send(Self.largeAnswers(600))
            #expect(try await Self.awaitRefusal("unread", node: node), "the node never found the client's buffers full")
            // A reset before this leaves the client nothing to read, which the checks below see.
            try? await socket.startReading()
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
            #expect(closed)
            Self.expectWhole(text, status: "HTTP/1.1 200 OK")
            #expect(try await node.http.request(method: "GET", path: "/healthz").status == 200)
        }
    }

    @Test(
        "bytes the decoder cannot read behind pipelined requests: every answer and the 400 arrive whole, then the end")
    func malformedBehindHeld() async throws {
        try await TestGateway.with(server: Self.patient) { node in
            let socket = try await RawTCP.connect(port: node.port, reading: false, receiveBufferBytes: 4096)
            defer { socket.close() }
            // A few large answers, then bytes that are no request, then more the node will
            // never read as requests.
            let junk = String(repeating: "x", count: 48 << 10)
            try await socket.send(Self.largeAnswers(6) + "NOT A REQUEST\r\n\r\n" + junk)
            #expect(try await Self.awaitRefusal("malformed", node: node), "the node never answered the bad bytes")
            // A reset before this leaves the client nothing to read, which the checks below see.
            try? await socket.startReading()
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
            #expect(closed)
            let statuses = Self.expectWhole(text, status: nil)
            #expect(statuses == Array(repeating: "HTTP/1.1 200 OK", count: 6) + ["HTTP/1.1 400 Bad Request"])
            #expect(try await node.http.request(method: "GET", path: "/healthz").status == 200)
        }
    }

    @Test("bytes behind a request that asked for the close are neither answered nor counted as malformed")
    func bytesAfterClose() async throws {
        try await TestGateway.with { node in
            let token = try await node.serviceToken()
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            // The first event proves the token: the next request is answered at once, while
            // the decoder is still reading what came with it.
            try await socket.send(HTTPPipeliningTests.post(Events.system(note: "first").jsonString, token: token))
            _ = try await HTTPPipeliningTests.responses(socket, count: 1)
            let bad = "{not json"
            let closing =
                "POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\n"
                + "Connection: close\r\nContent-Type: application/json\r\nContent-Length: \(bad.utf8.count)\r\n\r\n\(bad)"
            try await socket.send(closing + "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
            #expect(closed)
            let statuses = Self.expectWhole(text, status: nil)
            #expect(statuses == ["HTTP/1.1 202 Accepted", "HTTP/1.1 400 Bad Request"])
            let metrics = try await node.http.request(method: "GET", path: "/metrics").bodyString
            #expect(!metrics.contains("airavata_http_refused_total{reason=\"malformed\"} 1"), "counted as malformed")
        }
    }

    @Test("a client that neither closes nor stops sending after its last answer is closed by the node")
    func lingerIsBounded() async throws {
        try await TestGateway.with { node in
            // This client keeps its side open when the node ends its own, and goes on sending.
            let socket = try await RawTCP.connect(port: node.port, halfClosure: true)
            defer { socket.close() }
            try await socket.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let answer = try await socket.awaitEnd(timeout: .seconds(15))
            #expect(answer.map { Self.expectWhole($0, status: nil) } == ["HTTP/1.1 200 OK"])
            // Requests after the close are read and dropped, never answered, until the node
            // stops lingering: then a send meets the closed socket, and the connection ends.
            var sent = 0
            let closed = await eventually(within: .seconds(15)) {
                if socket.isOpen, sent < 1_000 {
                    sent += 1
                    try? await socket.send(Self.largeAnswers(1))
                }
                return !socket.isOpen
            }
            #expect(closed, "the node kept reading a finished connection: \(sent) requests sent after the close")
            let (text, _) = try await socket.readUntilClosed(timeout: .seconds(1))
            #expect(
                HTTPPipeliningTests.wholeResponses(text).responses.count == 1, "requests after the close were answered")
        }
    }

    @Test("a client that floods a finished connection is closed after 1 MiB, before the linger's time is up")
    func lingerBytesBounded() async throws {
        var server = ServerConfiguration()
        // Only the byte bound can end this connection within the test's wait.
        server.lingerSeconds = 120
        try await TestGateway.with(server: server) { node in
            let socket = try await RawTCP.connect(port: node.port, halfClosure: true)
            defer { socket.close() }
            try await socket.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let answer = try await socket.awaitEnd(timeout: .seconds(15))
            #expect(answer.map { Self.expectWhole($0, status: nil) } == ["HTTP/1.1 200 OK"])
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 << 10)
            var sent = 0
            let closed = await eventually(within: .seconds(20)) {
                // At most 16 MiB: socket buffers hold a few, the node drops 1.
                if socket.isOpen, sent < 16 << 20 {
                    sent += chunk.count
                    try? await socket.send(chunk)
                }
                return !socket.isOpen
            }
            #expect(closed, "still open after \(sent) bytes sent after the close")
            // The bound is `HTTPRequestHandler.lingerBytes`, 1 MiB.
            #expect(sent > 1 << 20, "closed after \(sent) bytes, under the bound")
        }
    }

    /// Expects `text` to be whole responses and nothing else, the last one saying
    /// `connection: close`, each with `status` when given; returns their status lines.
    @discardableResult
    static func expectWhole(_ text: String, status: String?) -> [String] {
        let (responses, consumed) = HTTPPipeliningTests.wholeResponses(text)
        let heads = responses.map(\.head)
        #expect(
            consumed == text.utf8.count,
            "\(text.utf8.count - consumed) bytes after \(heads.count) whole answers: the stream was cut short")
        let statuses = heads.map { $0.components(separatedBy: "\r\n").first ?? "" }
        #expect(!heads.isEmpty)
        if let status {
            #expect(statuses.allSatisfy { $0 == status }, "\(Set(statuses))")
        }
        let last = heads.last ?? ""
        #expect(last.lowercased().contains("connection: close"), "the last whole answer: \(last)")
        return statuses
    }
}
