/// What the bus knows about its own health, for `/readyz` and `/metrics`.
package struct EventBusHealth: Sendable, Equatable {
    package struct Link: Sendable, Equatable {
        package var role: String
        package var up: Bool

        package init(role: String, up: Bool) {
            self.role = role
            self.up = up
        }
    }

    /// False once the bus has been unable to carry events for longer than its grace period.
    package var ready: Bool
    package var reason: String?
    package var links: [Link]
    /// Seconds since the node last heard its own heartbeat through the bus.
    package var heartbeatAgeSeconds: Double?
    /// Times the node refilled a pub/sub gap from the replay log.
    package var gapFills: Int
    /// Events delivered from the replay log rather than from pub/sub.
    package var replayedEvents: Int
    /// Messages read from the bus and skipped: malformed, undecodable, or with a cursor the
    /// replay log does not hold.
    package var rejectedMessages: Int = 0
    /// Live messages waiting for a gap fill to finish (bounded).
    package var heldMessages: Int = 0

    package init(
        ready: Bool,
        reason: String? = nil,
        links: [Link] = [],
        heartbeatAgeSeconds: Double? = nil,
        gapFills: Int = 0,
        replayedEvents: Int = 0
    ) {
        self.ready = ready
        self.reason = reason
        self.links = links
        self.heartbeatAgeSeconds = heartbeatAgeSeconds
        self.gapFills = gapFills
        self.replayedEvents = replayedEvents
    }
}
