/// Every Redis key and channel name the cluster uses, in one place. With one Redis there
/// is one shard; sharding (design §7) would route `shard(for:)` to several primaries.
struct RedisKeys: Sendable {
    let prefix: String

    /// The replay log: a stream whose entries are single events (id = cursor) or v3 blocks
    /// (id = the block's first cursor).
    var eventStream: String { "\(prefix):events" }
    /// The pub/sub channel of v1 messages, one event each (see docs/architecture.md for why
    /// one channel). Every node reads it; releases before v2 read only this one.
    var eventChannel: String { "\(prefix):events" }
    /// The pub/sub channel of v2 messages, one script call's events each. Every node that
    /// reads v2 subscribes to both, so the difference in subscribers counts older nodes.
    var eventBatchChannel: String { "\(prefix):events:v2" }
    /// The pub/sub channel of v3 messages: per publish call a header, then the block body.
    /// Nodes that read v3 subscribe to all three event channels.
    var eventBlockChannel: String { "\(prefix):events:v3" }
    /// The v3 blocks in the replay log, oldest first, each `<its entry id> <event count>`,
    /// and how many events they hold: what lets the log be trimmed to `--replay-length`
    /// events when one entry holds many.
    var logBlocks: String { "\(prefix):events:blocks" }
    var logBlockEvents: String { "\(prefix):events:held" }
    /// The newest cursor some node had delivered when it found the log no longer holding it
    /// (a failover to a replica that lagged, a Redis restarted empty): events up to it may be
    /// gone from the log, so no resume from a cursor below it is complete.
    var logFloor: String { "\(prefix):events:floor" }
    /// A short stream (the newest `RedisEventBus.lossRecords` entries) of cursors that some
    /// node delivered and then found the log had lost, each entry `cursor <cursor>`. A node
    /// that never delivered one tells its own clients: it reads the records it has not seen
    /// in each gap fill and on each heartbeat.
    var logLosses: String { "\(prefix):events:losses" }
    /// Cluster-wide count of accepted events.
    var acceptedCounter: String { "\(prefix):stats:accepted" }
    /// Producers' event ids accepted within the deduplication window, scored by acceptance
    /// time (milliseconds, Redis's clock), and the cursor each was first accepted with.
    var producerIDs: String { "\(prefix):dedup:ids" }
    var producerIDCursors: String { "\(prefix):dedup:cursors" }

    func heartbeatChannel(instance: String) -> String { "\(prefix):hb:\(instance)" }
    func nodeLease(instance: String) -> String { "\(prefix):node:\(instance)" }
    var nodeLeasePrefix: String { "\(prefix):node:" }

    func userConnections(_ user: String) -> String { "\(prefix):conn:user:\(user)" }
    func ipConnections(_ ip: String) -> String { "\(prefix):conn:ip:\(ip)" }
    var allConnections: String { "\(prefix):conn:all" }

    func ownership(experiment: String) -> String { "\(prefix):own:\(experiment)" }

    /// A client's session for resume: its user and subscriptions, expiring.
    func session(_ id: String) -> String { "\(prefix):session:\(id)" }
    /// A user's session ids, scored by expiry (milliseconds), to bound how many one user keeps.
    func userSessions(_ user: String) -> String { "\(prefix):sessions:user:\(user)" }

    func nodeStatistics(instance: String) -> String { "\(prefix):stats:node:\(instance)" }
    var reportingNodes: String { "\(prefix):stats:nodes" }

    /// Which Redis primary holds a key; one today.
    func shard(for key: String) -> Int { 0 }
}
