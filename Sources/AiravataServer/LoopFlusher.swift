import NIOCore

/// Flushes, once per round, the connections of one event loop that were written to
/// without a flush. An event is written to each interested connection by a task on that
/// connection's loop; when several such tasks are queued (a pub/sub read that carried
/// several events, or a loop that fell behind), each connection then gets one `writev`
/// for all of them instead of one `write` each. The flush task is queued behind the work
/// already waiting and no later, so no event waits for one that has not arrived yet.
final class LoopFlusher {
    private static let flushers = PerLoop<ObjectIdentifier, NIOLoopBound<LoopFlusher>>()

    private let loop: any EventLoop
    private var due: [WebSocketConnectionHandler] = []
    private var scheduled = false
    /// The monotonic clock, read once while a flush is scheduled and kept until it runs.
    private var roundNanos: UInt64?
    /// Scratch for the `sendmsg` of this loop's connections that write their own sockets.
    let iovecs = DirectSocket.makeScratch()

    /// The flusher of the current event loop; made on first use.
    static func on(_ loop: any EventLoop) -> LoopFlusher {
        loop.preconditionInEventLoop()
        return flushers.value(for: ObjectIdentifier(loop)) {
            NIOLoopBound(LoopFlusher(loop: loop), eventLoop: loop)
        }.value
    }

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    /// Flushes `handler` once the tasks queued on this loop so far have run.
    func flushSoon(_ handler: WebSocketConnectionHandler) {
        due.append(handler)
        guard !scheduled else { return }
        scheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.flushDue() }
    }

    /// The monotonic clock for a delivery: read once per round of deliveries rather than
    /// once per connection (a fan-out writes the same event to thousands in one round). The
    /// round is a loop turn or two, far below what anything timed per send (Nagle's
    /// switch, `StreamDetector`) tells apart. Outside a round the clock is read each time.
    func nowNanos() -> UInt64 {
        if let roundNanos { return roundNanos }
        let now = NIODeadline.now().uptimeNanoseconds
        if scheduled { roundNanos = now }
        return now
    }

    /// A task of its own, never run from inside a pipeline: `SocketWriter.FlushSite.loopTask`
    /// relies on it.
    private func flushDue() {
        scheduled = false
        roundNanos = nil
        // Swapped out rather than copied: `removeAll(keepingCapacity:)` on a shared array
        // allocated a new one of the same size each round.
        var handlers: [WebSocketConnectionHandler] = []
        swap(&handlers, &due)
        for handler in handlers { handler.flushDeliveries() }
        if due.isEmpty {
            handlers.removeAll(keepingCapacity: true)
            due = handlers
        }
    }
}
