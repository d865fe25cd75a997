/// A token bucket for one connection's inbound messages. A value type: the connection
/// handler owns it on its event loop.
package struct RateLimiter: Sendable {
    private let ratePerSecond: Double
    private let burst: Double
    private var tokens: Double
    private var lastRefillNanos: UInt64

    /// `ratePerSecond <= 0` disables the limit.
    package init(ratePerSecond: Double, burst: Double? = nil, nowNanos: UInt64) {
        self.ratePerSecond = ratePerSecond
        self.burst = max(1, burst ?? ratePerSecond * 2)
        self.tokens = self.burst
        self.lastRefillNanos = nowNanos
    }

    package mutating func allow(nowNanos: UInt64) -> Bool {
        guard ratePerSecond > 0 else { return true }
        let elapsed = Double(nowNanos &- lastRefillNanos) / 1e9
        lastRefillNanos = nowNanos
        tokens = min(burst, tokens + elapsed * ratePerSecond)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
