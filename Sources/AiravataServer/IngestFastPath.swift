import AiravataCore
import NIOCore
import NIOHTTP1

/// A producer's event POST, or a WebSocket handshake, read straight from the connection's
/// bytes.
///
/// NIO's HTTP/1 server parts (its parser, a head object with every header as strings, the
/// request parts and our request state machine over them) were about a seventh of an
/// ingesting node's CPU per event. This handler reads a connection's bytes first and answers
/// the plainest form of the one request producers repeat, `POST /api/v1/events` with a
/// content length, on a kept-alive connection. Anything else it hands, with every byte not
/// yet answered, to NIO's decoder (added behind it then) and `HTTPRequestHandler`, and
/// leaves the pipeline: a request it does not fully understand (see `FastIngestHead`), a
/// refused or unproven token, a body over the limit, a request asking for the close. It
/// hands over only between requests, with none in flight, so answers stay in order.
///
/// A connection that opens with the plainest WebSocket handshake (`FastUpgradeHead`) skips
/// NIO's parser too (about a tenth of a node's CPU per connect): this handler reads the
/// head and `HTTPRequestHandler` makes the upgrade from it, as from a head NIO's decoder
/// made. A handshake `WebSocketHandshake` would refuse goes to the general path, which
/// answers it.
///
/// `HTTPRequestHandler` keeps the connection's clocks and its close: this handler tells it
/// when a request is being answered and when it was (`FastIngestEvent`). A client that does
/// not read its answers gets the one that finds the connection unwritable with
/// `connection: close`, as on the other path.
final class IngestFastPath: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Mode {
        /// Not enough bytes yet to know what the first request is.
        case undecided
        case fast
        /// The connection opened with a WebSocket handshake; its head is still arriving.
        case handshake
        /// The handshake is being answered: what the client sent after its head waits here
        /// until the WebSocket handlers are in place.
        case upgrading
        /// The last answer said `connection: close`: what follows is not read here.
        case closing
    }

    private let api: GatewayHTTPAPI
    private let maxBodySize: Int
    private var mode = Mode.undecided
    /// Bytes received and not yet answered (whole or partial requests).
    private var pending: ByteBuffer?
    /// A request is being answered (its token checked or its events published).
    private var busy = false
    /// `answerNext` is running: an answer made at once returns to its loop.
    private var looping = false
    /// Reading stopped because `pending` reached its bound while a request was answered.
    private var readingOff = false
    /// Between a `channelRead` and the `channelReadComplete` that ends its read.
    private var reading = false
    /// Whether the pending-connection gate was told this connection proved a producer.
    private var settled = false
    /// The head of the request at the front of `pending` while its body is still coming,
    /// read once (not again at every piece of the body), and whether its token was proven.
    private var waitingHead: (head: FastIngestHead, proven: Bool)?
    /// The peer is a trusted proxy: the general path names the client it forwards for to the
    /// pending-connection gate, so a token not proven before is checked there.
    private let viaTrustedProxy: Bool
    /// The handler behind this one (and behind NIO's decoder once it is added), which keeps
    /// the connection's clocks and its close:
    /// told directly what happens here (`FastIngestEvent`).
    private let clocks: HTTPRequestHandler
    /// The `Authorization` header value of the last request whose token proved a producer,
    /// as sent, with the producer and until when the node trusts it without a fresh check
    /// (`VerifiedTokens`). See `proof(of:in:)`.
    private var lastProof: (authorization: [UInt8], principal: Principal, untilMicros: Int64)?

    /// Where keep-alive answers are written.
    private enum AnswerPath {
        /// Through NIO, for a connection's first two answers (`answers` counts them): a
        /// producer that posts once per connection never pays for proving the socket.
        case nio(answers: Int)
        /// To the socket directly (`DirectSocket`), past NIO's write path (its pipeline, its
        /// pending-writes queue and flush: about a twentieth of an ingesting node), while
        /// NIO holds none of the connection's bytes.
        case socket(CInt)
        /// Always through NIO: direct writes are off (`--direct-writes false`, TLS) or the
        /// socket was not proven.
        case nioOnly
    }

    private var answerPath: AnswerPath
    /// Answers handed to NIO (what the kernel did not take) that NIO has not finished writing:
    /// until it has, later answers follow them through NIO, so none overtakes another.
    private var answersInNIO = 0

    init(
        api: GatewayHTTPAPI, maxBodySize: Int, viaTrustedProxy: Bool, directWrites: Bool, clocks: HTTPRequestHandler
    ) {
        self.api = api
        self.clocks = clocks
        self.maxBodySize = maxBodySize
        self.viaTrustedProxy = viaTrustedProxy
        self.answerPath = directWrites ? .nio(answers: 0) : .nioOnly
    }

    /// A head not whole after this many bytes goes to NIO's parser, which reads as bytes
    /// come; this one reads the head again at every piece, so a head sent a byte at a time
    /// costs it the square of its length.
    private static let maxWaitingHeadBytes = 4 << 10

    /// Past this many unanswered bytes (requests pipelined behind one being answered),
    /// reading stops until they are answered.
    private var maxPendingBytes: Int { maxBodySize + FastIngestHead.maxHeadBytes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        guard mode != .closing else { return }
        var incoming = unwrapInboundIn(data)
        if pending == nil {
            pending = incoming
        } else {
            pending!.writeBuffer(&incoming)
        }
        guard mode != .upgrading else { return }
        if mode == .undecided {
            let (ingest, upgrade) = pending!.withUnsafeReadableBytes {
                (FastIngestHead.opensAsExpected($0), FastUpgradeHead.opensAsExpected($0))
            }
            if ingest == true {
                mode = .fast
            } else if upgrade == true {
                mode = .handshake
            } else if ingest == false, upgrade == false {
                handOver(context: context)
                return
            } else {
                return
            }
        }
        if mode == .handshake {
            upgradeIfWhole(context: context)
            return
        }
        if !busy { answerNext(context: context) }
        if busy, let pending, pending.readableBytes > maxPendingBytes, !readingOff {
            readingOff = true
            context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
        }
    }

    /// While the fast path reads, the clocks follow its answers (`FastIngestEvent`), and the
    /// end of a read says nothing more, unless it left part of a request waiting with none
    /// being answered: then `HTTPRequestHandler` starts the request clock, as for a partial
    /// head on its own path. (Passed on always, it started the request clock after an
    /// answer made at once, and an idle connection got a 408 instead of its quiet close.)
    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        guard mode == .fast else {
            context.fireChannelReadComplete()
            return
        }
        if !busy, let pending, pending.readableBytes > 0 { context.fireChannelReadComplete() }
    }

    /// Answers the whole requests in `pending`, in order, until one waits for the bus or a
    /// token check, or the rest is incomplete or handed over. A loop, not a recursion:
    /// thousands of pipelined requests answered at once (bad JSON) would otherwise nest as
    /// deep on the event loop's stack.
    private func answerNext(context: ChannelHandlerContext) {
        guard !looping else { return }
        looping = true
        defer { looping = false }
        while mode == .fast, !busy, pending != nil, context.channel.isActive, startNext(context: context) {}
    }

    /// Starts answering the next request; false when none could start.
    private func startNext(context: ChannelHandlerContext) -> Bool {
        guard let buffer = pending, buffer.readableBytes > 0 else { return false }
        if let waiting = waitingHead {
            guard buffer.readableBytes >= waiting.head.length + waiting.head.contentLength else { return false }
        }
        let head: FastIngestHead
        if let waiting = waitingHead {
            head = waiting.head
        } else {
            switch buffer.withUnsafeReadableBytes({ FastIngestHead.parse($0) }) {
            case .incomplete:
                if buffer.readableBytes > Self.maxWaitingHeadBytes { handOver(context: context) }
                return false
            case .unusual:
                handOver(context: context)
                return false
            case .head(let parsed): head = parsed
            }
        }
        guard head.contentLength <= maxBodySize, let authorization = head.authorization else {
            handOver(context: context)
            return false
        }
        let (headers, publisher) = proof(of: authorization, in: buffer)
        guard buffer.readableBytes >= head.length + head.contentLength else {
            // The body is still coming. Only a token proven before waits for it here; any
            // other is checked on the head by the general path, before a byte of the body is
            // read (nobody without a token makes the node hold a body).
            guard publisher != nil else {
                handOver(context: context)
                return false
            }
            waitingHead = (head, true)
            return false
        }
        waitingHead = nil
        let body = buffer.getSlice(at: buffer.readerIndex + head.length, length: head.contentLength)!
        let request = HTTPRequest(
            method: .POST, uri: String(GatewayHTTPAPI.ingestionPath), headers: headers, body: body)
        busy = true
        clocks.fastIngest(.answering)
        let consumed = head.length + head.contentLength
        if let principal = publisher {
            var proven = request
            proven.publisher = principal
            dispatch(proven, consumed: consumed, context: context)
            return true
        }
        // Checked once per token (the gateway remembers proven tokens until they expire);
        // meanwhile what arrives waits in `pending`. Behind a trusted proxy, by the general path.
        guard !viaTrustedProxy else {
            busy = false
            handOver(context: context)
            return false
        }
        let api = self.api
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithTask { await api.provenPublisher(headers) }.whenSuccess { principal in
            let (handler, context) = bound.value
            guard context.channel.isActive, handler.mode == .fast else { return }
            guard let principal else {
                // The general path checks it again, counts the refusal and answers it.
                handler.busy = false
                handler.handOver(context: context)
                return
            }
            var request = request
            request.publisher = principal
            handler.dispatch(request, consumed: consumed, context: context)
        }
        return true
    }

    /// The request's `Authorization` header, and the producer it proves when the node
    /// verified its token recently. The header is read from the bytes (and the token looked
    /// up) only when it differs from the last proven one on this connection, or that proof
    /// is due to be checked again: a producer repeats its header on every request, and
    /// comparing bytes costs less than the string, the hash and the lock of a lookup. Empty
    /// headers stand for the remembered header: the ingestion answer reads only
    /// `publisher`.
    private func proof(of authorization: Range<Int>, in buffer: ByteBuffer) -> (HTTPHeaders, Principal?) {
        let nowMicros = WallClock.nowMicros()
        if let lastProof, nowMicros < lastProof.untilMicros,
            lastProof.authorization.count == authorization.count,
            buffer.withUnsafeReadableBytes({ bytes in
                HTTPHeadBytes.bytesEqual(
                    UnsafeRawBufferPointer(rebasing: bytes[authorization]), lastProof.authorization,
                    count: authorization.count)
            })
        {
            return ([:], lastProof.principal)
        }
        lastProof = nil
        let headers: HTTPHeaders = [
            "authorization":
                buffer.getString(at: buffer.readerIndex + authorization.lowerBound, length: authorization.count) ?? ""
        ]
        guard let trusted = api.recentPublisher(headers, nowMicros: nowMicros) else { return (headers, nil) }
        if authorization.count <= Self.maxRememberedAuthorizationBytes {
            lastProof = (
                Array(
                    buffer.viewBytes(at: buffer.readerIndex + authorization.lowerBound, length: authorization.count)!),
                trusted.principal, trusted.untilMicros
            )
        }
        return (headers, trusted.principal)
    }

    /// A longer header is looked up each time rather than kept with the connection.
    private static let maxRememberedAuthorizationBytes = 4 << 10

    private func dispatch(_ request: HTTPRequest, consumed: Int, context: ChannelHandlerContext) {
        if !settled {
            // A proven producer no longer counts against the cap on unauthenticated connections.
            settled = true
            context.triggerUserOutboundEvent(ConnectionSettled(), promise: nil)
        }
        api.answeredFast()
        pending?.moveReaderIndex(forwardBy: consumed)
        if pending?.readableBytes == 0 {
            pending = nil
        } else if let readerIndex = pending?.readerIndex, readerIndex >= Self.maxWaitingHeadBytes {
            // A connection that always has part of its next request waiting would otherwise
            // keep every byte it ever sent: the buffer grows from its start.
            pending?.discardReadBytes()
        }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        api.respond(to: request, on: context.eventLoop) { response in
            let (handler, context) = bound.value
            guard context.channel.isActive, handler.mode == .fast else { return }
            handler.answer(response, context: context)
        }
    }

    private func answer(_ response: HTTPResponse, context: ChannelHandlerContext) {
        busy = false
        // A client that pipelines requests but does not read its answers: this one is its
        // last (as `HTTPRequestHandler.dispatch` does).
        let keepAlive = context.channel.isWritable
        if !keepAlive { api.answersUnread() }
        guard keepAlive else {
            // Through NIO, behind any answer it still holds.
            let written = context.writeAndFlush(wrapOutboundOut(response.serialized(keepAlive: false)))
            mode = .closing
            pending = nil
            clocks.fastIngest(.closing(written))
            return
        }
        send(response.serialized(keepAlive: true), context: context)
        clocks.fastIngest(.answered(waiting: (pending?.readableBytes ?? 0) > 0))
        if readingOff, (pending?.readableBytes ?? 0) <= maxPendingBytes {
            readingOff = false
            context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
            context.read()
        }
        answerNext(context: context)
    }

    /// Writes and flushes one keep-alive answer: to the socket from the connection's third
    /// answer on, once its socket is proven, else through NIO. (An active channel's
    /// descriptor is its socket's: NIO closes it and marks the channel inactive in one step
    /// on this loop, see `SocketWriter`.)
    private func send(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        switch answerPath {
        case .nioOnly:
            // No promise: one per request was an allocation and a generic-metadata lookup.
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        case .nio(let answers):
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            guard answers > 0 else {
                answerPath = .nio(answers: answers + 1)
                return
            }
            // The second answer: a producer that keeps its connection. Its socket is proven
            // once (a reflection and two system calls), if NIO holds none of its bytes now.
            guard (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) == 0 else { return }
            answerPath = DirectSocket.of(context.channel).map { .socket($0) } ?? .nioOnly
        case .socket(let descriptor):
            guard answersInNIO == 0, context.channel.isActive else { return handToNIO(bytes, context: context) }
            switch DirectSocket.send(bytes, descriptor: descriptor) {
            case .sent(let sent) where sent == bytes.readableBytes:
                api.answeredDirectly()
            case .sent(let sent):
                // The kernel's buffer filled: NIO writes the rest when the socket drains.
                var rest = bytes
                rest.moveReaderIndex(forwardBy: sent)
                handToNIO(rest, context: context)
            case .failed:
                // NIO meets the same error on its write, and closes the connection.
                handToNIO(bytes, context: context)
            }
        }
    }

    private func handToNIO(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        answersInNIO += 1
        let written = context.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in bound.value.answersInNIO -= 1 }
        context.writeAndFlush(wrapOutboundOut(bytes), promise: written)
    }

    /// Makes the WebSocket upgrade once the handshake's head is whole, or hands the request
    /// to the general path: a head it does not fully understand, a handshake
    /// `WebSocketHandshake` refuses (the general path answers the refusal), or one that came
    /// through a trusted proxy (the general path names the client it forwards for to the
    /// pending-connection gate).
    private func upgradeIfWhole(context: ChannelHandlerContext) {
        guard let buffer = pending else { return }
        let parsed: FastUpgradeHead
        switch buffer.withUnsafeReadableBytes({ FastUpgradeHead.parse($0) }) {
        case .incomplete: return
        case .unusual:
            handOver(context: context)
            return
        case .head(let head): parsed = head
        }
        let head = buffer.withUnsafeReadableBytes { parsed.requestHead(in: $0) }
        guard !viaTrustedProxy, WebSocketHandshake.isAttempt(head), WebSocketHandshake.refusal(for: head) == nil
        else {
            handOver(context: context)
            return
        }
        pending!.moveReaderIndex(forwardBy: parsed.length)
        mode = .upgrading
        // `HTTPRequestHandler` makes the upgrade, as for a head from NIO's decoder, and
        // completes the promise once the WebSocket handlers are in place (at once: this
        // connection has no NIO decoder to wait for). Bytes behind the head wait here until
        // then.
        let upgraded = context.eventLoop.makePromise(of: Void.self)
        clocks.fastIngest(.upgrade(head, upgraded: upgraded))
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        upgraded.futureResult.whenComplete { result in
            let (handler, context) = bound.value
            handler.mode = .closing
            let rest = handler.pending
            handler.pending = nil
            // A refused upgrade (not expected: its checks ran above) is answered and closed
            // by `HTTPRequestHandler`; what the client sent after it is dropped. A handler no
            // longer there to make the upgrade (not expected either) answers nothing: the
            // connection is closed here.
            switch result {
            case .success:
                handler.api.upgradedFast()
                if let rest, rest.readableBytes > 0, context.channel.isActive {
                    context.fireChannelRead(handler.wrapInboundOut(rest))
                    if !handler.reading { context.fireChannelReadComplete() }
                }
            case .failure(let error):
                if error as? ChannelError == .ioOnClosedChannel, context.channel.isActive {
                    context.close(promise: nil)
                }
            }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    /// Puts NIO's decoder behind this handler, passes it every byte not yet answered, and
    /// leaves.
    private func handOver(context: ChannelHandlerContext) {
        mode = .closing
        waitingHead = nil
        do {
            try context.pipeline.syncOperations.addHandler(HTTPRequestHandler.makeDecoder(), position: .after(self))
        } catch {
            // Not expected: the pipeline is open while this handler reads.
            pending = nil
            context.close(promise: nil)
            return
        }
        if readingOff {
            readingOff = false
            context.channel.setOption(.autoRead, value: true).whenComplete { _ in }
        }
        clocks.fastIngest(.handedOver)
        if let pending, pending.readableBytes > 0 {
            self.pending = nil
            context.fireChannelRead(wrapInboundOut(pending))
            // Within a read, the read's own end follows (to the decoder, this handler gone);
            // a second one would undo what the first said about an answer made at once.
            if !reading { context.fireChannelReadComplete() }
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// What `IngestFastPath` tells `HTTPRequestHandler`, which keeps the connection's clocks
/// and its close.
enum FastIngestEvent {
    /// A whole request arrived and is being answered: no request clock meanwhile.
    case answering
    /// It was answered, and the connection kept alive: the idle clock runs, or the request
    /// clock when part of the next request is `waiting` already.
    case answered(waiting: Bool)
    /// It was answered with `connection: close` (written once this completes).
    case closing(EventLoopFuture<Void>)
    /// The general path reads the connection from here on (a token check that failed
    /// leaves `answering` without its answer).
    case handedOver
    /// The connection opened with a valid WebSocket handshake, read here: make the upgrade,
    /// and complete the promise once the HTTP handlers have made way for the WebSocket ones
    /// (fail it if the upgrade fails).
    case upgrade(HTTPRequestHead, upgraded: EventLoopPromise<Void>)
}

extension FastUpgradeHead {
    /// The head as NIO's parser would have made it.
    fileprivate func requestHead(in bytes: UnsafeRawBufferPointer) -> HTTPRequestHead {
        func text(_ range: Range<Int>) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }
        var fields = HTTPHeaders()
        fields.reserveCapacity(headers.count)
        for (name, value) in headers { fields.add(name: text(name), value: text(value)) }
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: text(target), headers: fields)
    }
}
