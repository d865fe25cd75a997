/// Liveness of one connection. Any sign of life (a message, a pong of either kind)
/// counts; a client silent for two intervals is given up on.
package struct Heartbeat: Sendable {
    package enum Action: Equatable, Sendable {
        case sendPing
        case close
    }

    private let intervalNanos: UInt64
    private var lastSeenNanos: UInt64

    package init(intervalNanos: UInt64, nowNanos: UInt64) {
        self.intervalNanos = intervalNanos
        self.lastSeenNanos = nowNanos
    }

    package mutating func sawLife(nowNanos: UInt64) {
        lastSeenNanos = nowNanos
    }

    /// Called once per interval.
    package func tick(nowNanos: UInt64) -> Action {
        nowNanos &- lastSeenNanos >= 2 * intervalNanos ? .close : .sendPing
    }
}
