/// A connection's liveness: a ping every interval, and the close once the peer has been
/// silent for two. Ticked often (a few times per interval, by its event loop's shared
/// ticker), so each connection keeps its own phase without a timer of its own.
package struct Heartbeat: Sendable {
    package enum Action: Equatable, Sendable {
        case none
        case sendPing
        case close
    }

    private let intervalNanos: UInt64
    /// When the peer last sent anything (or the connection began).
    package private(set) var lastSeenNanos: UInt64
    private var lastPingNanos: UInt64

    package init(intervalNanos: UInt64, nowNanos: UInt64) {
        self.intervalNanos = intervalNanos
        self.lastSeenNanos = nowNanos
        self.lastPingNanos = nowNanos
    }

    package mutating func sawLife(nowNanos: UInt64) {
        lastSeenNanos = nowNanos
    }

    package mutating func tick(nowNanos: UInt64) -> Action {
        if nowNanos &- lastSeenNanos >= 2 * intervalNanos { return .close }
        guard nowNanos &- lastPingNanos >= intervalNanos else { return .none }
        lastPingNanos = nowNanos
        return .sendPing
    }
}
