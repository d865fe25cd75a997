public import NIOCore
import NIOHTTP1
public import NIOPosix

/// A minimal HTTP/1.1 client for the gateway's own API: one request per connection.
/// (The CLI and tests need nothing more, and this keeps a heavy HTTP stack out.)
public struct GatewayHTTPClient: Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: ByteBuffer

        public var bodyString: String { String(buffer: body) }
    }

    public let host: String
    public let port: Int
    private let group: any EventLoopGroup

    public init(host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.port = port
        self.group = group
    }

    /// `http://host:port` (a path, if any, is ignored).
    public init(url: String) throws {
        guard url.hasPrefix("http://") else { throw GatewayClientError("only http:// URLs are supported: \(url)") }
        let rest = url.dropFirst("http://".count).prefix { $0 != "/" }
        let parts = rest.split(separator: ":", maxSplits: 1)
        guard let host = parts.first.map(String.init), !host.isEmpty else {
            throw GatewayClientError("no host in \(url)")
        }
        let port = parts.count > 1 ? Int(parts[1]) : 80
        guard let port, (1...65535).contains(port) else { throw GatewayClientError("bad port in \(url)") }
        self.init(host: host, port: port)
    }

    public func request(
        method: String,
        path: String,
        headers: [(String, String)] = [],
        body: ByteBuffer? = nil
    ) async throws -> Response {
        let channel = try await ClientBootstrap(group: group)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
            head.headers.add(name: "host", value: "\(host):\(port)")
            head.headers.add(name: "connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            if let body { head.headers.add(name: "content-length", value: String(body.readableBytes)) }
            // A server may answer (413, say) and close before it has read the whole body:
            // keep the write error, and prefer the answer if one arrived.
            var writeError: (any Error)?
            do {
                try await outbound.write(.head(head))
                if let body { try await outbound.write(.body(.byteBuffer(body))) }
                try await outbound.write(.end(nil))
            } catch {
                writeError = error
            }
            var response = Response(status: 0, headers: [], body: ByteBuffer())
            do {
                for try await part in inbound {
                    switch part {
                    case .head(let responseHead):
                        response.status = Int(responseHead.status.code)
                        response.headers = responseHead.headers.map { ($0.name, $0.value) }
                    case .body(var chunk):
                        response.body.writeBuffer(&chunk)
                    case .end:
                        return response
                    }
                }
            } catch {
                // Reading failed too; a complete head is still worth returning.
                if response.status != 0 { return response }
                throw writeError ?? error
            }
            if response.status != 0, writeError != nil { return response }
            if let writeError { throw writeError }
            throw GatewayClientError("connection closed before the response was complete")
        }
    }

    /// POSTs events (one object or an array, as JSON text) to `/api/v1/events`.
    public func publish(json: String, token: String) async throws -> Response {
        try await request(
            method: "POST",
            path: "/api/v1/events",
            headers: [("authorization", "Bearer \(token)"), ("content-type", "application/json")],
            body: ByteBuffer(string: json)
        )
    }
}

public struct GatewayClientError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
