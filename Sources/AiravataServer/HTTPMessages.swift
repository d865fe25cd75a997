package import AiravataCore
package import AiravataProtocol
package import NIOCore
package import NIOHTTP1

/// A complete HTTP request as the API sees it.
package struct HTTPRequest: Sendable {
    package var method: HTTPMethod
    package var uri: String
    package var headers: HTTPHeaders
    package var body: ByteBuffer
    /// The producer proven by an ingestion request's token, checked on the request head.
    package var publisher: Principal?

    package init(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }

    package var path: Substring { Self.path(of: uri) }

    package static func path(of uri: String) -> Substring { WebSocketRoute.split(uri).path }
}

/// A complete HTTP response.
package struct HTTPResponse: Sendable {
    package var status: HTTPResponseStatus
    package var headers: HTTPHeaders
    package var body: ByteBuffer

    package init(status: HTTPResponseStatus, contentType: String, body: ByteBuffer) {
        self.status = status
        self.headers = ["content-type": contentType]
        self.body = body
    }

    package static func json(_ status: HTTPResponseStatus, _ value: JSONValue) -> HTTPResponse {
        var bytes: [UInt8] = []
        value.write(into: &bytes)
        bytes.append(UInt8(ascii: "\n"))
        return HTTPResponse(status: status, contentType: "application/json", body: ByteBuffer(bytes: bytes))
    }

    /// The whole answer as the bytes of an HTTP/1.1 response, with its `content-length` and
    /// `connection` headers; without the body when `bodyless` (an answer to HEAD).
    ///
    /// The gateway's answers are written this way, in one piece, and the pipeline has no HTTP
    /// encoder: NIO's took three pipeline writes (head, body, end), a copy of the headers and
    /// a promise per answer, ~7 % of an ingesting node (1:1 profile s9-prof-11). Every header
    /// the gateway sets is a constant or a number, never a client's bytes; one that could
    /// end the line early is left out rather than written.
    package func serialized(keepAlive: Bool, bodyless: Bool = false) -> ByteBuffer {
        var bytes = ByteBuffer()
        bytes.reserveCapacity(160 + (bodyless ? 0 : body.readableBytes))
        bytes.writeStaticString("HTTP/1.1 ")
        bytes.writeString(String(status.code))
        bytes.writeStaticString(" ")
        bytes.writeString(status.reasonPhrase)
        bytes.writeStaticString("\r\n")
        for (name, value) in headers {
            guard Self.isFieldText(name), Self.isFieldText(value) else { continue }
            guard !Self.equalsIgnoringCase(name, "content-length"), !Self.equalsIgnoringCase(name, "connection")
            else { continue }
            bytes.writeString(name)
            bytes.writeStaticString(": ")
            bytes.writeString(value)
            bytes.writeStaticString("\r\n")
        }
        bytes.writeStaticString("content-length: ")
        bytes.writeString(String(body.readableBytes))
        bytes.writeStaticString(keepAlive ? "\r\nconnection: keep-alive\r\n\r\n" : "\r\nconnection: close\r\n\r\n")
        if !bodyless { bytes.writeImmutableBuffer(body) }
        return bytes
    }

    /// ASCII case-insensitive equality with a lower-case name, without allocating.
    private static func equalsIgnoringCase(_ text: String, _ lowered: StaticString) -> Bool {
        let other = UnsafeRawBufferPointer(start: lowered.utf8Start, count: lowered.utf8CodeUnitCount)
        let lower = { (byte: UInt8) in (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
        return text.utf8.count == other.count && zip(text.utf8, other).allSatisfy { lower($0) == $1 }
    }

    /// No control characters (CR, LF, NUL and the rest) that could split the response.
    private static func isFieldText(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }
    }

    /// Every API error has this shape: `{"error": "...", "field": "..."}`.
    package static func error(_ status: HTTPResponseStatus, _ message: String, field: String? = nil) -> HTTPResponse {
        var object: JSONObject = ["error": .string(message)]
        if let field { object["field"] = .string(field) }
        return .json(status, .object(object))
    }
}
