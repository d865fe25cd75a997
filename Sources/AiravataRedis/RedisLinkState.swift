/// Whether a Redis link is up, for readiness and metrics.
public enum RedisLinkState: Sendable, Equatable {
    case connecting
    case connected
    /// Down since this monotonic instant (nanoseconds, `NIODeadline.now().uptimeNanoseconds`).
    case disconnected(sinceNanos: UInt64)
}
