import AiravataClient
import AiravataTestSupport
import Testing

/// What the HTTP parser cannot read is answered 400 and the connection closes; the node
/// serves on.
@Suite("Malformed HTTP requests")
struct MalformedHTTPTests {
    @Test(
        "bytes that are no HTTP request get a 400 and the close, counted, and the node serves on",
        arguments: [
            "GARBAGE\r\n\r\n",
            "GET / HTTP/1.1\r\nHost localhost\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: nine\r\n\r\n",
            "GET /\u{1} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ])
    func malformed(request: String) async throws {
        try await TestGateway.with { node in
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            try await socket.send(request)
            let (answer, closed) = try await socket.readUntilClosed()
            #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(answer.debugDescription)")
            #expect(answer.contains("connection: close"))
            #expect(closed, "the connection stayed open after the 400")
            #expect(try await node.http.request(method: "GET", path: "/healthz").status == 200)
            let metrics = try await node.http.request(method: "GET", path: "/metrics").bodyString
            #expect(metrics.contains("airavata_http_refused_total{reason=\"malformed\"} 1"))
        }
    }

    @Test("a good request before the bad bytes is answered first, then the 400")
    func goodThenBad() async throws {
        try await TestGateway.with { node in
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            try await socket.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\nGARBAGE\r\n\r\n")
            let (answer, closed) = try await socket.readUntilClosed()
            let statuses = answer.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("HTTP/1.1 ") }
            #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"], "\(answer.debugDescription)")
            #expect(closed)
        }
    }
}
