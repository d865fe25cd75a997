import NIOCore

/// A command on its way out: RESP bytes and, unless it is fire-and-forget, where its
/// reply goes.
struct RedisRequest {
    var bytes: ByteBuffer
    var promise: EventLoopPromise<RedisReply>?
}

/// Writes commands, parses replies with hiredis and answers requests in order. On a
/// subscriber connection, pub/sub pushes (`message`, `subscribe`, …) go to `onPush`
/// instead, on the event loop, in arrival order.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private let parser = RedisReplyParser()
    private var pending = CircularBuffer<EventLoopPromise<RedisReply>>(initialCapacity: 16)
    private let onPush: ((RedisReply) -> Void)?

    private static let pushKinds: Set<String> = [
        "message", "pmessage", "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "pong",
    ]

    init(onPush: ((RedisReply) -> Void)?) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if let replyPromise = request.promise { pending.append(replyPromise) }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try parser.feed(unwrapInboundIn(data))
            while let reply = try parser.next() {
                if let onPush, isPush(reply) {
                    onPush(reply)
                } else if let promise = pending.popFirst() {
                    promise.succeed(reply)
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

    private func failAll(_ error: any Error) {
        while let promise = pending.popFirst() { promise.fail(error) }
    }
}
