import NIOCore
import NIOHTTP1

/// A plain HTTP connection's two clocks: the request clock (a request must arrive whole within
/// `limits.requestTimeout` of its first byte, or of the accept) and the idle clock (a
/// kept-alive connection with nothing asked is closed after `limits.idleTimeout`).
extension HTTPRequestHandler {
    func handlerAdded(context: ChannelHandlerContext) {
        ownContext = context
        // A new connection owes us its request from the first moment.
        startRequestClock(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ownContext = nil
        cancelTimer()
        dropTimer()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        dropTimer()
        context.fireChannelInactive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        let answered = answeredInRead
        reading = false
        answeredInRead = false
        // The decoder passes this on even when the bytes did not make a whole head yet. Not
        // after an answer made within this read: its request took the bytes, and the idle
        // clock runs. (Part of a next request in the same read waits under the idle clock,
        // and the next read that brings more starts the request clock.)
        if case .idle = state, !closing, !fastAnswering, !answered {
            sawBytes = true
            if running != .request { startRequestClock(context: context) }
        }
        context.fireChannelReadComplete()
    }

    enum Clock {
        /// From the first byte of a request to its last, `limits.requestTimeout`.
        case request
        /// A kept-alive connection may sit idle this long before we close it.
        case idle
    }

    func startRequestClock(context: ChannelHandlerContext) {
        schedule(.request, after: limits.requestTimeout, context: context)
    }

    func startIdleClock(context: ChannelHandlerContext) {
        sawBytes = false
        schedule(.idle, after: limits.idleTimeout, context: context)
    }

    private func schedule(_ clock: Clock, after seconds: Double, context: ChannelHandlerContext) {
        cancelTimer()
        guard seconds > 0 else { return }
        running = clock
        deadline = .now() + .nanoseconds(Int64(seconds * 1e9))
        // A task due no later than the new deadline wakes in time and sleeps on; only a
        // deadline earlier than the task's needs a new one.
        if timer == nil || deadline < timerDeadline { arm(at: deadline, context: context) }
    }

    private func arm(at when: NIODeadline, context: ChannelHandlerContext) {
        timer?.cancel()
        timerDeadline = when
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: when) {
            bound.value.handler.fired(context: bound.value.context)
        }
    }

    private func fired(context: ChannelHandlerContext) {
        timer = nil
        timerDeadline = .distantFuture
        guard let clock = running else { return }
        if NIODeadline.now() < deadline {
            arm(at: deadline, context: context)
        } else {
            expired(clock, context: context)
        }
    }

    private func expired(_ clock: Clock, context: ChannelHandlerContext) {
        running = nil
        deadline = .distantFuture
        // The last answer is out: its grace, or the linger, ends the connection.
        guard !closing else { return }
        switch (clock, state) {
        case (.request, .receiving), (.request, .authenticating):
            api.requestTimedOut()
            respondAndClose(.error(.requestTimeout, "Request not received in time"), context: context)
        case (.request, .idle) where sawBytes:
            api.requestTimedOut()
            writeTimeoutBeforeHead(context: context)
        case (.request, .idle), (.idle, .idle):
            // Nothing was asked: nothing to answer.
            context.close(promise: nil)
        case (.request, .upgrading), (.request, .discarding):
            // An upgrade whose request never ended, or a refused body that keeps coming.
            api.requestTimedOut()
            context.close(promise: nil)
        case (_, .responding), (_, .upgraded), (.idle, _):
            break
        }
    }

    /// No head arrived whole, so there is no request to answer: the 408 is written the way
    /// every answer is (already encoded), as an answer to no HEAD.
    private func writeTimeoutBeforeHead(context: ChannelHandlerContext) {
        answeringHEAD = false
        respondAndClose(.error(.requestTimeout, "Request not received in time"), context: context)
    }

    /// Stops the running clock. The scheduled task stays and finds nothing to do, unless a
    /// clock started meanwhile.
    func cancelTimer() {
        running = nil
        deadline = .distantFuture
    }

    /// Cancels the scheduled task itself: the connection is gone.
    func dropTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = .distantFuture
    }
}
