import NIOCore

/// How a plain HTTP connection ends, and the requests `IngestFastPath` answers in front of
/// this handler: their clocks and their close are kept here.
extension HTTPRequestHandler {
    /// `IngestFastPath` answers producers' POSTs before NIO's decoder sees them; this handler
    /// keeps the connection's clocks and its close for it. A direct call, not an event sent
    /// down the pipeline: two per request passed through NIO's decoder and a dynamic cast
    /// here, about 2 % of an ingesting node's CPU.
    func fastIngest(_ event: FastIngestEvent) {
        guard let context = ownContext else {
            // This handler has left the pipeline (the connection is gone or upgraded).
            if case .upgrade(_, let upgraded) = event { upgraded.fail(ChannelError.ioOnClosedChannel) }
            return
        }
        switch event {
        case .answering:
            cancelTimer()
            fastAnswering = true
        case .answered(let waiting):
            fastAnswering = false
            if waiting {
                sawBytes = true
                startRequestClock(context: context)
            } else {
                startIdleClock(context: context)
            }
        case .handedOver:
            fastAnswering = false
        case .upgrade(let head, let upgraded):
            // Not expected otherwise: the fast path reads only a connection's first request.
            guard !closing, case .idle = state else {
                upgraded.fail(ChannelError.inappropriateOperationForState)
                return
            }
            upgrade(head, context: context, upgraded: upgraded)
        case .closing(let written):
            fastAnswering = false
            closing = true
            held.removeAll()
            syncReading(context: context)
            closeAfter(written, context: context)
        }
    }

    /// Lingers (see `linger`) once `written` completes, or closes after a short grace if it
    /// never does (a client that does not read, or a TLS handshake that never happened, holds
    /// writes forever).
    func closeAfter(_ written: EventLoopFuture<Void>, context: ChannelHandlerContext) {
        let channel = context.channel
        let grace = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(limits.finalAnswerGrace * 1e9))) {
            channel.close(promise: nil)
        }
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        written.whenComplete { result in
            grace.cancel()
            guard case .success = result, channel.isActive else {
                channel.close(promise: nil)
                return
            }
            bound.value.handler.linger(context: bound.value.context)
        }
    }

    /// Ends a connection whose last answer is written, without a reset.
    ///
    /// Closing a socket while its receive buffer holds bytes the node has not read makes
    /// Linux send a reset instead of the end of the stream, and a reset discards what the
    /// node's kernel has not yet delivered: the last answers of a client that pipelined
    /// requests behind them, or a 400 behind answered ones, would arrive cut short or not at
    /// all. So the write side is shut first (the kernel sends what it holds, then the end),
    /// and what the client still sends is read and dropped, below every other handler,
    /// until the client closes, `lingerBytes` have come, or `limits.linger` has passed.
    func linger(context: ChannelHandlerContext) {
        guard !lingering else { return }
        lingering = true
        closing = true
        cancelTimer()
        dropTimer()
        held.removeAll()
        let channel = context.channel
        let drain = InputDrain(limit: Self.lingerBytes, time: .nanoseconds(Int64(limits.linger * 1e9)))
        do {
            try context.pipeline.syncOperations.addHandler(drain, position: .first)
        } catch {
            channel.close(promise: nil)
            return
        }
        syncReading(context: context)
        context.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
    }

    /// How much a closing connection may still send before it is closed anyway.
    static let lingerBytes = 1 << 20
}
