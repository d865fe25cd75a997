import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Collects plain HTTP requests (bounded), hands them to the API and writes the answer.
///
/// The upgrade handler ahead of it takes a connection's first request when it is a WebSocket
/// upgrade, and leaves the pipeline after any other first request. An upgrade that comes
/// later on a kept-alive connection (Node's fetch and WebSocket share a pool) reaches this
/// handler instead: it puts a fresh upgrade handler back in front and hands it the request.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The body is over the limit: it is read and dropped, then the connection closes.
        case discarding(bytes: Int)
        case responding
        /// A late WebSocket upgrade went to a fresh upgrade handler; the rest of it follows there.
        case handedOff
    }

    private let api: GatewayHTTPAPI
    private let maxBodySize: Int
    private var state = State.idle

    /// A client that keeps sending after its 413 is cut off here.
    private static let maxDiscardedBytes = 64 << 20

    private let makeUpgrader: @Sendable () -> NIOWebSocketServerUpgrader

    init(api: GatewayHTTPAPI, maxBodySize: Int, makeUpgrader: @escaping @Sendable () -> NIOWebSocketServerUpgrader) {
        self.api = api
        self.maxBodySize = maxBodySize
        self.makeUpgrader = makeUpgrader
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle) where Self.isWebSocketUpgrade(head):
            if handOffUpgrade(context: context, head: data) {
                state = .handedOff
            } else {
                state = .receiving(head, context.channel.allocator.buffer(capacity: 0))
            }
        case (.head(let head), .idle):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodySize {
                tooLarge(context: context, bytes: 0)
            } else {
                state = .receiving(head, context.channel.allocator.buffer(capacity: 0))
            }
        case (.body(var chunk), .receiving(let head, var body)):
            if body.readableBytes + chunk.readableBytes > maxBodySize {
                tooLarge(context: context, bytes: body.readableBytes + chunk.readableBytes)
            } else {
                body.writeBuffer(&chunk)
                state = .receiving(head, body)
            }
        case (.body(let chunk), .discarding(let bytes)):
            let total = bytes + chunk.readableBytes
            state = .discarding(bytes: total)
            if total > Self.maxDiscardedBytes { context.close(promise: nil) }
        case (.end, .receiving(let head, let body)):
            state = .responding
            dispatch(
                context: context,
                request: HTTPRequest(method: head.method, uri: head.uri, headers: head.headers, body: body),
                keepAlive: head.isKeepAlive)
        case (.end, .discarding):
            context.close(promise: nil)
        case (_, .handedOff):
            // Parts of the handed-off request that were already on their way to us.
            break
        default:
            break
        }
    }

    private static func isWebSocketUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.method == .GET && head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
            && WebSocketRoute(head: head) != nil
    }

    /// Rebuilds what `configureHTTPServerPipeline(withServerUpgrade:)` set up for the first
    /// request, ahead of this handler, and passes the request head to it.
    private func handOffUpgrade(context: ChannelHandlerContext, head: NIOAny) -> Bool {
        let pipeline = context.pipeline.syncOperations
        do {
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            var extras: [any RemovableChannelHandler] = [
                try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            ]
            if let handler = try? pipeline.handler(type: HTTPServerPipelineHandler.self) { extras.append(handler) }
            if let handler = try? pipeline.handler(type: NIOHTTPResponseHeadersValidator.self) {
                extras.append(handler)
            }
            if let handler = try? pipeline.handler(type: HTTPServerProtocolErrorHandler.self) {
                extras.append(handler)
            }
            let upgrade = HTTPServerUpgradeHandler(
                upgraders: [makeUpgrader()],
                httpEncoder: encoder,
                extraHTTPHandlers: extras,
                upgradeCompletionHandler: { context in
                    context.pipeline.removeHandler(name: "http-api", promise: nil)
                }
            )
            let relay = Relay()
            try pipeline.addHandler(relay, position: .before(self))
            try pipeline.addHandler(upgrade, position: .before(self))
            try pipeline.context(handler: relay).fireChannelRead(head)
            return true
        } catch {
            return false
        }
    }

    private func tooLarge(context: ChannelHandlerContext, bytes: Int) {
        state = .discarding(bytes: bytes)
        api.bodyTooLarge()
        let response = HTTPResponse.error(
            .payloadTooLarge,
            "Request body exceeds the limit of \(maxBodySize) bytes"
        )
        write(response, keepAlive: false, context: context)
    }

    private func dispatch(context: ChannelHandlerContext, request: HTTPRequest, keepAlive: Bool) {
        let api = self.api
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithTask { await api.respond(to: request) }
            .whenSuccess { response in
                let (handler, context) = bound.value
                handler.state = .idle
                handler.write(response, keepAlive: keepAlive, context: context)
            }
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = response.headers
        headers.replaceOrAdd(name: "content-length", value: String(response.body.readableBytes))
        headers.replaceOrAdd(name: "connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive, case .discarding = state {
            // Keep reading the rest of the body so the client sees our answer, not a reset;
            // the connection closes at its end (or past the discard cap).
            return
        }
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// A pass-through whose context lets a request part enter the pipeline just ahead of the
/// upgrade handler placed after it.
private final class Relay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
}
