import NIOCore
import NIOHTTP1

/// HTTP/1.1 pipelining, answered in order without NIO's pipelining handler (see
/// `HTTPRequestHandler.channelRead`): a request that arrives while another is answered is
/// held, reading stops until it can be answered, and held requests are replayed in order.
extension HTTPRequestHandler {
    /// A request is between its head and the end of its answer.
    var isAnswering: Bool {
        switch state {
        case .idle: false
        case .receiving, .authenticating, .discarding, .responding, .upgrading, .upgraded: true
        }
    }

    func hold(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        guard !floodedOut else { return }
        guard held.count < limits.maxHeldParts else {
            floodedOut = true
            api.requestsFlooded()
            context.close(promise: nil)
            return
        }
        held.append(part)
        if held.count == 1 { syncReading(context: context) }
    }

    /// Replays held requests once the one before them has been answered, up to the next
    /// request that must wait in turn.
    func releaseHeld(context: ChannelHandlerContext) {
        guard !releasing else { return }
        releasing = true
        defer { releasing = false }
        while let next = held.first {
            if closing {
                // An answer replayed here was the last: nothing behind it is answered.
                held.removeAll()
                break
            }
            if case .upgraded = state {
                // Nothing follows an upgrade request: the HTTP decoder stops at its end.
                held.removeAll()
                break
            }
            if next.isHead, isAnswering { break }
            held.removeFirst()
            handle(next, context: context)
        }
        if malformedAfterHeld, held.isEmpty, !isAnswering, !closing {
            answerMalformed(context: context)
            return
        }
        syncReading(context: context)
    }

    /// Reading runs unless a token is being checked, requests are held, or the decoder has
    /// failed (nothing after that is read as a request), or the last answer is on its way.
    /// A lingering connection reads on: what arrives is dropped before the decoder.
    func syncReading(context: ChannelHandlerContext) {
        let off = !lingering && (closing || pausedForToken || !held.isEmpty || malformedAfterHeld)
        guard off != readingOff else { return }
        readingOff = off
        context.channel.setOption(.autoRead, value: !off).whenComplete { _ in }
    }
}

extension HTTPServerRequestPart {
    var isHead: Bool {
        if case .head = self { true } else { false }
    }
}

/// First in a closing connection's pipeline (see `HTTPRequestHandler.linger`): drops what
/// the client still sends, and closes the connection past `limit` bytes or after `time`.
/// Its closes start here, below TLS: NIO's TLS handler would wait for the client's
/// close_notify, which this handler drops.
final class InputDrain: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let limit: Int
    private let time: TimeAmount
    private var bytes = 0
    private var timer: Scheduled<Void>?

    init(limit: Int, time: TimeAmount) {
        self.limit = limit
        self.time = time
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: time) { bound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytes
        if bytes > limit { context.close(promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {}
}
