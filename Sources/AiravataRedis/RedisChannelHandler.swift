import NIOCore

/// A command on its way out: RESP bytes and, unless it is fire-and-forget, where its
/// reply goes and when it is overdue.
struct RedisRequest {
    var bytes: ByteBuffer
    var promise: EventLoopPromise<RedisReply>?
    /// The command's name, for the error that says which reply never came (bytes: made
    /// into text only then).
    var name: [UInt8] = []
    /// How long the reply may take, counted from when the handler takes the command; every
    /// command of a connection has the same.
    var timeout: TimeAmount? = nil
}

/// Writes commands, parses replies with hiredis and answers requests in order. On a
/// subscriber connection, pub/sub pushes (`message`, `subscribe`, …) go to `onPush`
/// instead, on the event loop, in arrival order.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    /// A command waiting for its reply.
    private struct Waiting {
        let promise: EventLoopPromise<RedisReply>
        let name: [UInt8]
        let deadline: NIODeadline
    }

    private let parser = RedisReplyParser()
    private var pending = CircularBuffer<Waiting>(initialCapacity: 16)
    private let onPush: ((RedisReply) -> Void)?
    /// One timer for the whole connection. Replies come in command order and every command
    /// gets the same timeout, so the oldest waiting command is always the first overdue; the
    /// timer is set for it and, firing early (its command answered meanwhile), is set again
    /// for the new oldest. A timer per command cost a heap insertion and a linear-search
    /// removal on the event loop each (3 % of a node's CPU in a connect storm).
    private var timer: Scheduled<Void>?

    private static let pushKinds: Set<String> = [
        "message", "pmessage", "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "pong",
    ]

    init(onPush: ((RedisReply) -> Void)?) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let replyPromise = request.promise {
            let deadline = request.timeout.map { .now() + $0 } ?? .distantFuture
            pending.append(Waiting(promise: replyPromise, name: request.name, deadline: deadline))
            if timer == nil { armTimer(context: context, at: deadline) }
        }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    private func armTimer(context: ChannelHandlerContext, at deadline: NIODeadline) {
        guard deadline != .distantFuture else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timerFired(context: context)
        }
    }

    private func timerFired(context: ChannelHandlerContext) {
        timer = nil
        guard let oldest = pending.first else { return }
        guard oldest.deadline <= .now() else {
            armTimer(context: context, at: oldest.deadline)
            return
        }
        // A half-open socket would otherwise hang every caller: fail the overdue command and
        // close; the rest fail as the channel goes inactive.
        _ = pending.popFirst()
        oldest.promise.fail(
            RedisError(.timeout, "no reply to \(String(decoding: oldest.name, as: UTF8.self)) within the timeout"))
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try parser.feed(unwrapInboundIn(data))
            while let reply = try parser.next() {
                if let onPush, isPush(reply) {
                    onPush(reply)
                } else if let waiting = pending.popFirst() {
                    waiting.promise.succeed(reply)
                } else {
                    throw RedisError(.protocolViolation, "a reply arrived that no command asked for")
                }
            }
        } catch {
            failAll(error)
            context.close(promise: nil)
        }
    }

    private func isPush(_ reply: RedisReply) -> Bool {
        guard case .array(let elements) = reply, let kind = elements.first?.string else { return false }
        return Self.pushKinds.contains(kind)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError(.connectionClosed, "the connection to Redis closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    private func failAll(_ error: any Error) {
        timer?.cancel()
        timer = nil
        while let waiting = pending.popFirst() { waiting.promise.fail(error) }
    }
}
