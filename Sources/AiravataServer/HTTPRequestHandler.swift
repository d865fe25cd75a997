import AiravataCore
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Collects plain HTTP requests (bounded in size and time), hands them to the API and writes
/// the answer; makes every WebSocket upgrade, or refuses it.
///
/// An upgrade may be a connection's first request or come later on a kept-alive one (Node's
/// fetch and WebSocket share a pool). A valid one is answered 101 and the connection's HTTP
/// handlers, this one included, make way for the WebSocket ones (`upgrade`); a refused one
/// gets one 400 (426 for a wrong version) and the close.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    enum State {
        case idle
        /// `publisher` is the producer proven by an ingestion request's token. The body so far
        /// is in `body`.
        case receiving(HTTPRequestHead, publisher: Principal?)
        /// An ingestion request whose token is being checked; its body waits, unread, in `body`.
        case authenticating(HTTPRequestHead, ended: Bool)
        /// The request was refused before its end (too large, no valid token): what is left of
        /// it is read and dropped, then the connection closes.
        case discarding(bytes: Int)
        case responding
        /// A valid WebSocket upgrade's head arrived; the upgrade is made at its end.
        case upgrading(HTTPRequestHead)
        /// The connection is a WebSocket now; this handler has left the pipeline.
        case upgraded
    }

    let api: GatewayHTTPAPI
    let limits: Limits
    var state = State.idle
    /// The body of the request being received (`receiving`, `authenticating`). Kept out of
    /// `state`: a buffer in an enum's payload is shared with the copy a `switch` binds, so
    /// each appended part copied the whole body so far (a megabyte sent in 64-byte chunks
    /// cost half a second of the loop's CPU).
    private var body = ByteBuffer()
    /// The one scheduled task behind both clocks. Requests on a kept-alive connection start
    /// and stop the clocks several times each; moving a deadline is a field write, and the
    /// task, when it fires early, sleeps again until the current deadline.
    var timer: Scheduled<Void>?
    /// When `timer` fires.
    var timerDeadline = NIODeadline.distantFuture
    /// Which clock runs, and until when.
    var running: Clock?
    var deadline = NIODeadline.distantFuture
    /// Some bytes of a request arrived since the connection was accepted or last went idle.
    var sawBytes = false
    /// The client behind a trusted proxy has been named to the pending-connection gate.
    private var forwardedNamed = false

    /// Parts of requests that arrived while an earlier request was still being answered
    /// (HTTP/1.1 pipelining), in order, replayed once it has been answered. Reading stops
    /// while any are held, so only what the reads so far brought waits here.
    var held = CircularBuffer<HTTPServerRequestPart>()
    /// Reading is paused while an ingestion token is checked.
    var pausedForToken = false
    /// Whether the pending-connection gate was told this connection proved a producer; it
    /// then leaves the pipeline, and later requests need not tell it again.
    private var settled = false
    /// What this handler last set `autoRead` to, inverted.
    var readingOff = false
    /// The request being answered is a HEAD: its answer carries the headers of a GET, no body.
    var answeringHEAD = false
    /// This handler's own place in the pipeline while it is in it, for `fastIngest`, which
    /// `IngestFastPath` calls from its own.
    var ownContext: ChannelHandlerContext?
    /// Past the bound on held parts: the close is under way, and what the same read still
    /// delivers is dropped (and counted once, not per part).
    var floodedOut = false
    /// Held requests are being replayed: an answer made at once (a refusal, a health check)
    /// returns to the loop below instead of replaying the next request one stack frame deeper.
    var releasing = false
    /// The decoder failed on bytes that followed requests still to be answered: the 400
    /// waits for their answers (see `errorCaught`).
    var malformedAfterHeld = false
    /// The connection's last answer is on its way (it said `connection: close`): nothing
    /// after it is read as a request, answered or counted, and reading stays paused until
    /// the answer is written and `linger` starts.
    var closing = false
    /// The last answer is written and the write side shut: what still arrives is dropped
    /// (see `linger`).
    var lingering = false
    /// `IngestFastPath`, in front of the decoder, is answering a request: no request clock.
    var fastAnswering = false
    /// Between a `channelRead` and the `channelReadComplete` that ends its read.
    var reading = false
    /// A request of this read was answered within it (an answer made at once).
    var answeredInRead = false

    /// A client that keeps sending after its refusal is cut off here.
    private static let maxDiscardedBytes = 64 << 20

    private let websocket: WebSocketUpgrade

    /// The bounds of one plain HTTP exchange.
    struct Limits: Sendable {
        var maxBodySize: Int
        /// From the first byte of a request to its last.
        var requestTimeout: Double
        /// How long a kept-alive connection may wait for its next request.
        var idleTimeout: Double
        /// More pipelined request parts than this waiting behind an unanswered request is a
        /// client flooding us: it is cut off.
        var maxHeldParts: Int
        /// How long a final answer may take to leave before the connection is closed anyway.
        var finalAnswerGrace: Double = 2
        /// How long a closing connection is read and dropped before it is closed anyway.
        var linger: Double = 2
    }

    /// The client a trusted proxy forwards for, or nil when the peer is no trusted proxy.
    private let forwardedClient: @Sendable (HTTPHeaders) -> String?
    /// The peer's address as text, read once at the accept (each reading formats it anew).
    private let peer: String

    init(
        api: GatewayHTTPAPI, limits: Limits, peer: String,
        forwardedClient: @escaping @Sendable (HTTPHeaders) -> String?, websocket: WebSocketUpgrade
    ) {
        self.api = api
        self.limits = limits
        self.peer = peer
        self.forwardedClient = forwardedClient
        self.websocket = websocket
    }

    // MARK: Requests

    /// The gateway answers requests one at a time, in order, without NIO's pipelining
    /// handler: that handler withholds the channel's `read` while a request is answered, so
    /// every request cost two `epoll_ctl` calls (read interest off and on again, ~3 % of an
    /// ingesting node). Reading goes on here; only a request that arrives while another is
    /// answered is held, and only then does reading stop.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        // What arrives behind the last answer (or the decoder still held): not a request.
        guard !closing else { return }
        let part = unwrapInboundIn(data)
        if !held.isEmpty || (part.isHead && isAnswering) {
            hold(part, context: context)
            return
        }
        handle(part, context: context)
    }

    func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        guard !closing else { return }
        if case .head(let head) = part, case .idle = state {
            // A whole head in one read reaches us before channelReadComplete: its clock
            // starts here, whatever the connection did before.
            if running != .request { startRequestClock(context: context) }
            nameForwardedClient(head, context: context)
            answeringHEAD = head.method == .HEAD
        }
        switch (part, state) {
        case (.head(let head), .idle) where WebSocketHandshake.isAttempt(head):
            if let refusal = WebSocketHandshake.refusal(for: head) {
                refuseUpgrade(refusal, context: context)
            } else {
                // The request clock runs on: an upgrade whose request never ends is closed.
                state = .upgrading(head)
            }
        case (.head(let head), .idle):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodySize {
                tooLarge(context: context, bytes: 0)
            } else if head.method == .POST, HTTPRequest.path(of: head.uri) == GatewayHTTPAPI.ingestionPath {
                authenticate(head, context: context)
            } else {
                body = ByteBuffer()
                state = .receiving(head, publisher: nil)
            }
        case (.body(var chunk), .receiving), (.body(var chunk), .authenticating):
            // While authenticating, only what one read already held arrives: reading is paused.
            if body.readableBytes + chunk.readableBytes > limits.maxBodySize {
                tooLarge(context: context, bytes: body.readableBytes + chunk.readableBytes)
            } else {
                body.writeBuffer(&chunk)
            }
        case (.body(let chunk), .discarding(let bytes)):
            let total = bytes + chunk.readableBytes
            state = .discarding(bytes: total)
            if total > Self.maxDiscardedBytes { context.close(promise: nil) }
        case (.end, .receiving(let head, let publisher)):
            cancelTimer()
            state = .responding
            var request = HTTPRequest(method: head.method, uri: head.uri, headers: head.headers, body: takeBody())
            request.publisher = publisher
            dispatch(context: context, request: request, keepAlive: head.isKeepAlive)
        case (.end, .authenticating(let head, _)):
            cancelTimer()
            state = .authenticating(head, ended: true)
        case (.end, .discarding):
            linger(context: context)
        case (.end, .upgrading(let head)):
            upgrade(head, context: context)
        case (_, .upgrading), (_, .upgraded):
            // A body sent with an upgrade request is not read; nothing follows the upgrade here.
            break
        default:
            break
        }
    }

    /// Behind a trusted proxy the peer address says nothing about the client: once the first
    /// head names it, the gate counts the connection against that client's own cap.
    private func nameForwardedClient(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard !forwardedNamed else { return }
        forwardedNamed = true
        if let client = forwardedClient(head.headers) {
            context.triggerUserOutboundEvent(ForwardedClient(ip: client), promise: nil)
        }
    }

    /// Checks a producer's token from the request head, before its body is read, so that
    /// nobody without a token can make the node buffer a body.
    private func authenticate(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        if let principal = api.recentPublisher(head.headers) {
            // Proven before and still valid: the body is read on at once.
            settle(context: context)
            body = ByteBuffer()
            state = .receiving(head, publisher: principal)
            return
        }
        body = ByteBuffer()
        state = .authenticating(head, ended: false)
        pausedForToken = true
        syncReading(context: context)
        let api = self.api
        let headers = head.headers
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithTask { await api.authenticatePublisher(headers) }
            .whenSuccess { result in
                let (handler, context) = bound.value
                // Whatever happened meanwhile (a 413 from the same read), reading resumes.
                handler.pausedForToken = false
                handler.syncReading(context: context)
                guard case .authenticating(let head, let ended) = handler.state else { return }
                switch result {
                case .failure(let refusal):
                    handler.refuseEarly(refusal.response, context: context, ended: ended)
                case .success(let principal):
                    // A proven producer no longer counts against the unauthenticated cap.
                    handler.settle(context: context)
                    if ended {
                        var request = HTTPRequest(
                            method: head.method, uri: head.uri, headers: head.headers, body: handler.takeBody())
                        request.publisher = principal
                        handler.state = .responding
                        handler.dispatch(context: context, request: request, keepAlive: head.isKeepAlive)
                    } else {
                        handler.state = .receiving(head, publisher: principal)
                    }
                }
            }
    }

    /// The body received, leaving an empty one (no capacity held) for the next request.
    private func takeBody() -> ByteBuffer {
        var taken = ByteBuffer()
        swap(&taken, &body)
        return taken
    }

    private func settle(context: ChannelHandlerContext) {
        guard !settled else { return }
        settled = true
        context.triggerUserOutboundEvent(ConnectionSettled(), promise: nil)
    }

    private func refuseUpgrade(_ refusal: WebSocketHandshake.Refusal, context: ChannelHandlerContext) {
        api.upgradeRefused(refusal.status)
        var response = HTTPResponse.error(refusal.status, refusal.message)
        for (name, value) in refusal.headers { response.headers.add(name: name, value: value) }
        respondAndClose(response, context: context)
    }

    /// Answers and closes at once: nothing more of this connection is read.
    func respondAndClose(_ response: HTTPResponse, context: ChannelHandlerContext) {
        cancelTimer()
        state = .responding
        write(response, keepAlive: false, context: context)
    }

    /// Answers a request whose body is still coming: the rest is read and dropped so that
    /// the client sees our answer rather than a reset, then the connection closes.
    private func refuseEarly(_ response: HTTPResponse, context: ChannelHandlerContext, ended: Bool) {
        if ended {
            respondAndClose(response, context: context)
            return
        }
        body = ByteBuffer()
        state = .discarding(bytes: 0)
        write(response, keepAlive: false, context: context)
    }

    /// Makes the connection a WebSocket, in this one call: the WebSocket handlers take the
    /// place of the HTTP ones. NIO's upgrade handler did the same through a chain of futures,
    /// a promise per handler it removed; that chain was ~18 % of a node's CPU in a connect
    /// storm (`perf`, docs/performance.md). The 101 answer goes to the connection's handler,
    /// which writes it together with its first frame: the greeting once the client is
    /// admitted, or the refusal and the close.
    /// - Parameter upgraded: completed once the WebSocket handlers are in place and the HTTP
    ///   ones gone, NIO's decoder included when the connection has one; failed when the
    ///   upgrade fails. (`IngestFastPath`, which read the head itself, holds what follows it
    ///   until then.)
    func upgrade(
        _ head: HTTPRequestHead, context: ChannelHandlerContext, upgraded: EventLoopPromise<Void>? = nil
    ) {
        cancelTimer()
        let pipeline = context.pipeline.syncOperations
        guard let answer = WebSocketHandshake.switchingProtocols(for: head),
            let connection = websocket.makeHandler(peer, head, answer)
        else {
            upgraded?.fail(ChannelError.inappropriateOperationForState)
            refuseUpgrade(.init(status: .internalServerError, message: "Upgrade failed"), context: context)
            return
        }
        state = .upgraded
        do {
            // No frame encoder: every frame the connection's handler writes is already
            // framed bytes (`WebSocketWireFrame`), one shared buffer per event, and nothing
            // else on a server connection writes frames. An encoder would only cost each
            // connection a handler for its whole life.
            try pipeline.addHandlers(
                [ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: websocket.maxFrameSize)), connection],
                position: .last)
        } catch {
            upgraded?.fail(error)
            context.close(promise: nil)
            return
        }
        // NIO's decoder, when the connection has one, parses nothing after an upgrade
        // request; what the client sent after it (frames, from a client that did not wait for
        // our answer) it passes on as it leaves, through to the WebSocket decoder. A
        // connection whose handshake `IngestFastPath` read has none: what followed the head
        // waits there.
        if let decoder = try? pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self) {
            pipeline.removeHandler(decoder, promise: upgraded)
            pipeline.removeHandler(context: context, promise: nil)
        } else {
            pipeline.removeHandler(context: context, promise: nil)
            upgraded?.succeed()
        }
    }

    /// NIO's HTTP/1 request parser, as the general path reads requests: what follows an
    /// upgrade request is passed on unread.
    static func makeDecoder() -> ByteToMessageHandler<HTTPRequestDecoder> {
        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
    }

    private func tooLarge(context: ChannelHandlerContext, bytes: Int) {
        cancelTimer()
        api.bodyTooLarge()
        let response = HTTPResponse.error(
            .payloadTooLarge,
            "Request body exceeds the limit of \(limits.maxBodySize) bytes"
        )
        body = ByteBuffer()
        state = .discarding(bytes: bytes)
        write(response, keepAlive: false, context: context)
    }

    private func dispatch(context: ChannelHandlerContext, request: HTTPRequest, keepAlive: Bool) {
        let api = self.api
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        api.respond(to: request, on: context.eventLoop) { response in
            let (handler, context) = bound.value
            guard case .responding = handler.state, !handler.closing, context.channel.isActive else { return }
            handler.state = .idle
            // A client that pipelines requests but does not read its answers would
            // otherwise pile them up in memory: it gets this one and the close.
            let unread = keepAlive && !context.channel.isWritable
            if unread { handler.api.answersUnread() }
            let keepAlive = keepAlive && !unread
            handler.write(response, keepAlive: keepAlive, context: context)
            if keepAlive {
                handler.answeredInRead = handler.reading
                handler.startIdleClock(context: context)
                handler.releaseHeld(context: context)
            }
        }
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        // In one piece, already encoded (see `HTTPResponse.serialized`): the pipeline has no
        // HTTP encoder.
        let bytes = NIOAny(response.serialized(keepAlive: keepAlive, bodyless: answeringHEAD))
        guard !keepAlive else {
            context.writeAndFlush(bytes, promise: nil)
            return
        }
        if case .discarding = state {
            // The refused body is still read (and dropped, below) until its end.
            context.writeAndFlush(bytes, promise: nil)
            // Keep reading the rest of the body so the client sees our answer, not a reset;
            // the connection closes at its end, past the discard cap, or at the request timeout.
            let channel = context.channel
            let timeout = TimeAmount.nanoseconds(Int64(max(limits.requestTimeout, 1) * 1e9))
            context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
            return
        }
        closing = true
        held.removeAll()
        syncReading(context: context)
        closeAfter(context.writeAndFlush(bytes), context: context)
    }
}

/// What a WebSocket upgrade needs from the server.
struct WebSocketUpgrade: Sendable {
    /// The largest frame the WebSocket decoder accepts.
    var maxFrameSize: Int
    /// The handler that serves the upgraded connection; nil when the path is not a WebSocket
    /// endpoint (checked before, so not expected).
    /// The arguments are the peer's address, the request and the 101 answer, for the handler
    /// to write.
    var makeHandler: @Sendable (_ peer: String, HTTPRequestHead, ByteBuffer) -> WebSocketConnectionHandler?
}
