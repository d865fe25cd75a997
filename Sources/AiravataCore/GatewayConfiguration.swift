/// The core's settings. Defaults are the protocol's and the design's.
package struct GatewayConfiguration: Sendable {
    package var nodeID: String
    package var limits: ConnectionLimits
    /// Explicit subscriptions one connection may hold (its path subscription included).
    package var maxSubscriptionsPerConnection: Int
    /// How often `system_status` statistics go to every connection; 0 turns it off.
    package var statsIntervalSeconds: Double
    package var maximumBatchSize: Int
    /// How often the node shares its figures for the cluster statistics.
    package var reportSeconds: Double = 1
    /// How long a disconnected client's session can be resumed; open connections renew
    /// theirs every third of it.
    package var sessionTTLSeconds: Double = 300
    /// Newest events kept in memory to answer resuming clients without reading the replay
    /// log; never more than the log keeps, so the window clients see stays the log's.
    package var replayMemory: Int = 10_000
    /// Most events one resuming client is replayed; beyond it the client refetches.
    package var maxReplayEvents: Int = 10_000
    /// Most resumable sessions one user keeps (`--max-sessions-per-user`); a new session
    /// beyond it evicts the user's oldest (see `SessionStore` for why evict, not refuse).
    package var maxSessionsPerUser: Int = 50

    package init(
        nodeID: String,
        limits: ConnectionLimits = ConnectionLimits(),
        maxSubscriptionsPerConnection: Int = 100,
        statsIntervalSeconds: Double = 30,
        maximumBatchSize: Int = 1000
    ) {
        self.nodeID = nodeID
        self.limits = limits
        self.maxSubscriptionsPerConnection = maxSubscriptionsPerConnection
        self.statsIntervalSeconds = statsIntervalSeconds
        self.maximumBatchSize = maximumBatchSize
    }
}
