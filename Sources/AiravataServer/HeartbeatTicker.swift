import NIOCore

/// One repeating timer per event loop (and ping interval) that ticks the heartbeats of all
/// its connections, instead of a timer per connection: measured on 3,000 idle WebSockets, a
/// connection's own repeated task cost ~400 bytes; here it costs a dictionary entry. It
/// ticks a few times per interval, and each connection's `Heartbeat` keeps its own phase,
/// so a silent client is still closed two intervals after its last sign of life (plus at
/// most one tick).
final class HeartbeatTicker {
    private struct Key: Hashable {
        let loop: ObjectIdentifier
        let intervalNanos: UInt64
    }

    private static let tickers = PerLoop<Key, NIOLoopBound<HeartbeatTicker>>()

    private let loop: any EventLoop
    private var members: [ObjectIdentifier: WebSocketConnectionHandler] = [:]
    private var task: RepeatedTask?

    /// How often a ticker runs for a ping interval: a quarter of it, from 1 ms to 1 s.
    static func period(forIntervalNanos interval: UInt64) -> TimeAmount {
        .nanoseconds(Int64(min(max(interval / 4, 1_000_000), 1_000_000_000)))
    }

    /// The ticker of the current event loop for this interval; made on first use.
    static func on(_ loop: any EventLoop, intervalNanos: UInt64) -> HeartbeatTicker {
        loop.preconditionInEventLoop()
        let key = Key(loop: ObjectIdentifier(loop), intervalNanos: intervalNanos)
        return tickers.value(for: key) {
            NIOLoopBound(HeartbeatTicker(loop: loop, intervalNanos: intervalNanos), eventLoop: loop)
        }.value
    }

    private init(loop: any EventLoop, intervalNanos: UInt64) {
        self.loop = loop
        let period = Self.period(forIntervalNanos: intervalNanos)
        let bound = NIOLoopBound(self, eventLoop: loop)
        task = loop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in bound.value.tick() }
    }

    func add(_ handler: WebSocketConnectionHandler) {
        members[ObjectIdentifier(handler)] = handler
    }

    func remove(_ handler: WebSocketConnectionHandler) {
        members[ObjectIdentifier(handler)] = nil
    }

    private func tick() {
        guard !members.isEmpty else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        // A copy: a tick may close a connection, which removes it from `members`.
        for handler in Array(members.values) { handler.heartbeatTick(nowNanos: now) }
    }
}
