package import AiravataRedis

/// Settings of a node that shares state through Redis.
package struct ClusterConfiguration: Sendable {
    package var redis: RedisConfiguration
    /// Prefix of every key and channel, so several gateways can share one Redis.
    package var keyPrefix: String
    /// Events kept in the replay stream (approximate trim, `XADD MAXLEN ~`).
    package var replayLength: Int
    /// A node's leases (connection counts, statistics) expire this long after it stops
    /// renewing them: the bound on how long a crashed node keeps counting.
    package var nodeLeaseSeconds: Double
    /// How often a node sends itself a heartbeat through Redis pub/sub.
    package var heartbeatSeconds: Double
    /// How long Redis may be unreachable (or the heartbeat missing) before `/readyz` fails.
    package var outageGraceSeconds: Double
    /// How long the experiment → (project, owner) index keeps an entry.
    package var ownershipTTLSeconds: Int
    /// How often a node writes its figures for the cluster statistics.
    package var reportSeconds: Double

    package init(
        redis: RedisConfiguration,
        keyPrefix: String = "airavata",
        replayLength: Int = 100_000,
        nodeLeaseSeconds: Double = 30,
        heartbeatSeconds: Double = 1,
        outageGraceSeconds: Double = 5,
        ownershipTTLSeconds: Int = 7 * 86_400,
        reportSeconds: Double = 1
    ) {
        self.redis = redis
        self.keyPrefix = keyPrefix
        self.replayLength = replayLength
        self.nodeLeaseSeconds = nodeLeaseSeconds
        self.heartbeatSeconds = heartbeatSeconds
        self.outageGraceSeconds = outageGraceSeconds
        self.ownershipTTLSeconds = ownershipTTLSeconds
        self.reportSeconds = reportSeconds
    }
}
