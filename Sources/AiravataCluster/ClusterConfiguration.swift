package import AiravataCore
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
    /// Which form of bus message this node writes (docs/architecture.md, "The bus message").
    package var busFormat: BusFormat
    /// How long, and for how many, producers' event ids are remembered in Redis.
    package var deduplication = Deduplication()
    /// Durable ingestion: a 202 only once the events reached this many replicas.
    package var durability = Durability()

    package init(
        redis: RedisConfiguration,
        keyPrefix: String = "airavata",
        replayLength: Int = 100_000,
        nodeLeaseSeconds: Double = 30,
        heartbeatSeconds: Double = 1,
        outageGraceSeconds: Double = 5,
        ownershipTTLSeconds: Int = 7 * 86_400,
        reportSeconds: Double = 1,
        busFormat: BusFormat = .automatic
    ) {
        self.redis = redis
        self.keyPrefix = keyPrefix
        self.replayLength = replayLength
        self.nodeLeaseSeconds = nodeLeaseSeconds
        self.heartbeatSeconds = heartbeatSeconds
        self.outageGraceSeconds = outageGraceSeconds
        self.ownershipTTLSeconds = ownershipTTLSeconds
        self.reportSeconds = reportSeconds
        self.busFormat = busFormat
    }
}

/// The form of the bus messages and replay log entries a node writes. Every node reads all.
package enum BusFormat: String, Sendable, CaseIterable, Comparable {
    /// The newest form every node in the cluster reads: v3 when all do; v2 while a node of
    /// a release before v3 is subscribed, v1 while one before v2 is (a rolling upgrade).
    case automatic = "auto"
    /// The whole event as JSON, one pub/sub message per event: what releases before v2 read.
    case v1
    /// A routing header and the ready client message, one pub/sub message per script call;
    /// one log entry per event.
    case v2
    /// v2's events, one log entry per script call (a block), and the node's bytes published
    /// as they are: about half of Redis's time per event.
    case v3

    package var number: Int {
        switch self {
        case .automatic: 0
        case .v1: 1
        case .v2: 2
        case .v3: 3
        }
    }

    package static func < (lhs: BusFormat, rhs: BusFormat) -> Bool { lhs.number < rhs.number }
}

/// Durable ingestion (`--durable-replicas`): Redis replicates asynchronously, so an event it
/// accepted can die with the primary before any replica has it. With `replicas` above 0 the
/// node answers 202 only after `WAIT replicas timeout` confirms that many replicas hold the
/// call's events; otherwise 503 (the events may already have been delivered: producers that
/// use this should send event ids, so that their retry is not delivered twice).
package struct Durability: Sendable, Equatable {
    /// Replicas that must hold an event before it is acknowledged; 0 turns it off.
    package var replicas: Int
    /// Longest wait for them, in milliseconds.
    package var timeoutMillis: Int

    package init(replicas: Int = 0, timeoutMillis: Int = 1000) {
        self.replicas = replicas
        self.timeoutMillis = timeoutMillis
    }
}
