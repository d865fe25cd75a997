import Logging
import NIOCore
import NIOHTTP1

/// Collects plain HTTP requests (bounded), hands them to the API and writes the answer.
/// WebSocket upgrades never reach it: the upgrade handler ahead of it takes those.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        /// The body is over the limit: it is read and dropped, then the connection closes.
        case discarding(bytes: Int)
        case responding
    }

    private let api: GatewayHTTPAPI
    private let maxBodySize: Int
    private var state = State.idle

    /// A client that keeps sending after its 413 is cut off here.
    private static let maxDiscardedBytes = 64 << 20

    init(api: GatewayHTTPAPI, maxBodySize: Int) {
        self.api = api
        self.maxBodySize = maxBodySize
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
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
        default:
            break
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
