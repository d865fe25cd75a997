import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// One HTTP/1.1 request on its own connection, over TLS if asked, with a bound on the whole
/// exchange: for probing a node's `/healthz` and `/readyz` while it starts, fails or drains.
public enum HTTPProbe {
    public struct Response: Sendable {
        public var status: Int
        public var body: String
    }

    /// How a TLS client checks the server: against `caFile`, for `serverName` (nil checks
    /// the address connected to against the certificate's IP addresses).
    public struct TLS: Sendable {
        public var caFile: String
        public var serverName: String?

        public init(caFile: String, serverName: String?) {
            self.caFile = caFile
            self.serverName = serverName
        }
    }

    public static func request(
        port: Int,
        method: String = "GET",
        path: String,
        headers: [(String, String)] = [],
        body: String? = nil,
        host: String = "127.0.0.1",
        tls: TLS? = nil,
        timeout: Duration = .seconds(5)
    ) async throws -> Response {
        let sslContext: NIOSSLContext? = try tls.map { tls in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(tls.caFile)
            return try NIOSSLContext(configuration: configuration)
        }
        let done = MultiThreadedEventLoopGroup.singleton.any().makePromise(of: String.self)
        let collector = ResponseCollector(done: done)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let sslContext {
                            try channel.pipeline.syncOperations.addHandler(
                                NIOSSLClientHandler(context: sslContext, serverHostname: tls?.serverName))
                        }
                        try channel.pipeline.syncOperations.addHandler(collector)
                    }
                }
                .connect(host: host, port: port).get()
            var request = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
            for (name, value) in headers { request += "\(name): \(value)\r\n" }
            if let body { request += "Content-Length: \(body.utf8.count)\r\n" }
            request += "\r\n" + (body ?? "")
            try await channel.writeAndFlush(ByteBuffer(string: request))
        } catch {
            // NIO insists that every promise is completed.
            done.fail(error)
            throw error
        }
        let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let timer = channel.eventLoop.scheduleTask(in: .nanoseconds(nanos)) {
            done.fail(TestSupportError("no complete HTTP response to \(method) \(path) within \(timeout)"))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        let text = try await done.futureResult.get()
        guard let statusLine = text.split(separator: "\r\n", maxSplits: 1).first,
            let status = statusLine.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else {
            throw TestSupportError("not an HTTP response to \(method) \(path): '\(text.prefix(200))'")
        }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Response(status: status, body: body)
    }
}

/// Keeps everything the server sends until it closes (the request asked it to).
private final class ResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    // Touched only on the channel's event loop.
    private var bytes: [UInt8] = []
    private let done: EventLoopPromise<String>

    init(done: EventLoopPromise<String>) {
        self.done = done
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.succeed(String(decoding: bytes, as: UTF8.self))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
        context.close(promise: nil)
    }
}
