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

    /// Every API error has this shape: `{"error": "...", "field": "..."}`.
    package static func error(_ status: HTTPResponseStatus, _ message: String, field: String? = nil) -> HTTPResponse {
        var object: JSONObject = ["error": .string(message)]
        if let field { object["field"] = .string(field) }
        return .json(status, .object(object))
    }
}
