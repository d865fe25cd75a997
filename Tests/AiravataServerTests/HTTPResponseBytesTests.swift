import AiravataCore
import AiravataProtocol
import AiravataServer
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// `HTTPResponse.serialized`: the bytes every answer of the HTTP API is written as.
@Suite("HTTP answers as bytes")
struct HTTPResponseBytesTests {
    static func text(_ buffer: ByteBuffer) -> String { String(buffer: buffer) }

    @Test("the 202 body written directly is the JSON value's own encoding: escapes, duplicates, empty batches")
    func acceptedBody() {
        func viaJSON(_ accepted: [Gateway.Accepted]) -> [UInt8] {
            let duplicates = accepted.indices.filter { accepted[$0].duplicate }
            let value = JSONValue.object([
                "accepted": .integer(accepted.count - duplicates.count),
                "ids": .array(accepted.map { .string($0.id) }),
                "cursors": .array(accepted.map { .string($0.cursor) }),
                "duplicates": .array(duplicates.map { .integer($0) }),
            ])
            return Array(HTTPResponse.json(.accepted, value).body.readableBytesView)
        }
        let batches: [[Gateway.Accepted]] = [
            [],
            [.init(id: "exp-1-7", cursor: "1795713253458-0")],
            [
                .init(id: "a\"quote\\ and \u{1}", cursor: "1-0"),
                .init(id: "dup", cursor: "1-1", duplicate: true),
                .init(id: "caf\u{E9}", cursor: "2-0"),
                .init(id: "dup-2", cursor: "2-1", duplicate: true),
            ],
        ]
        for batch in batches {
            let direct = GatewayHTTPAPI.acceptedBody(batch)
            #expect(direct == viaJSON(batch), "\(String(decoding: direct, as: UTF8.self))")
        }
    }

    @Test("status line, our headers, then content-length and connection, then the body")
    func layout() {
        var response = HTTPResponse(
            status: .accepted, contentType: "application/json", body: ByteBuffer(string: "{}\n"))
        response.headers.add(name: "retry-after", value: "1")
        #expect(
            Self.text(response.serialized(keepAlive: true))
                == "HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
                + "content-length: 3\r\nconnection: keep-alive\r\n\r\n{}\n")
        #expect(Self.text(response.serialized(keepAlive: false)).contains("\r\nconnection: close\r\n\r\n{}\n"))
    }

    @Test("an answer to HEAD keeps the length of the body it leaves out")
    func head() {
        let response = HTTPResponse.json(.ok, .object(["status": .string("ok")]))
        let text = Self.text(response.serialized(keepAlive: true, bodyless: true))
        #expect(text.hasSuffix("content-length: 16\r\nconnection: keep-alive\r\n\r\n"), "\(text)")
    }

    @Test("a content-length or connection set by the API is replaced, not repeated")
    func ownFraming() {
        var response = HTTPResponse(status: .ok, contentType: "text/plain", body: ByteBuffer(string: "hi"))
        response.headers.add(name: "Content-Length", value: "99")
        response.headers.add(name: "connection", value: "upgrade")
        let text = Self.text(response.serialized(keepAlive: true)).lowercased()
        #expect(text.components(separatedBy: "content-length").count == 2, "\(text)")
        #expect(text.components(separatedBy: "connection").count == 2, "\(text)")
        #expect(text.contains("content-length: 2\r\n"), "\(text)")
    }

    @Test("a header that could split the response (CR, LF, NUL) is left out")
    func noSplitting() {
        var response = HTTPResponse(status: .ok, contentType: "text/plain", body: ByteBuffer(string: "x"))
        response.headers.add(name: "x-evil", value: "a\r\nset-cookie: b")
        response.headers.add(name: "x-nul", value: "a\u{0}b")
        response.headers.add(name: "x-tab", value: "a\tb")
        let text = Self.text(response.serialized(keepAlive: true))
        #expect(!text.contains("x-evil") && !text.contains("set-cookie") && !text.contains("x-nul"), "\(text)")
        #expect(text.contains("x-tab: a\tb\r\n"), "\(text)")
    }
}
