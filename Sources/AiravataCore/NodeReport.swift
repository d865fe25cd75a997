import Synchronization

/// One node's figures, as it shares them with the cluster for statistics and the dashboard.
package struct NodeReport: Sendable, Equatable {
    package var nodeID: String
    package var startedAtMicros: Int64
    package var activeConnections: Int
    package var totalConnections: Int
    /// Events accepted through this node's ingestion API.
    package var eventsAccepted: Int
    package var acceptRate: Double
    /// Event frames handed to this node's connections, and how many a second lately.
    package var deliveries: Int
    package var deliveryRate: Double = 0
    /// Events that reached this node (from its own ingestion or the bus) and were looked up.
    package var routed: Int = 0
    /// Delivery latency over the last `recentSeconds` (at most `GatewayStatistics.windowSeconds`).
    package var recentLatency = LatencyHistogram()
    package var recentSeconds: Double = 0
    package var status = NodeStatus()
    package var reportedAtMicros: Int64 = 0

    package init(
        nodeID: String,
        startedAtMicros: Int64,
        activeConnections: Int,
        totalConnections: Int,
        eventsAccepted: Int,
        acceptRate: Double,
        deliveries: Int
    ) {
        self.nodeID = nodeID
        self.startedAtMicros = startedAtMicros
        self.activeConnections = activeConnections
        self.totalConnections = totalConnections
        self.eventsAccepted = eventsAccepted
        self.acceptRate = acceptRate
        self.deliveries = deliveries
    }
}

/// What the server layer knows of a node: its lifecycle, its Redis links, its version and the
/// counters an operator watches during an incident.
package struct NodeStatus: Sendable, Equatable {
    /// `starting`, `ready` or `draining`.
    package var state: String
    /// False once the bus has been unable to carry events past its grace.
    package var busReady: Bool
    /// `up`, `down`, or `none` without Redis.
    package var redis: String
    package var heartbeatAgeSeconds: Double?
    package var version: String
    /// Outcome counters since the node started (`slow_consumer_closes`, …) and process figures
    /// (`rss_bytes`, `open_fds`), by name.
    package var figures: [String: Int]

    package init(
        state: String = "ready", busReady: Bool = true, redis: String = "none", heartbeatAgeSeconds: Double? = nil,
        version: String = GatewayVersion.current, figures: [String: Int] = [:]
    ) {
        self.state = state
        self.busReady = busReady
        self.redis = redis
        self.heartbeatAgeSeconds = heartbeatAgeSeconds
        self.version = version
        self.figures = figures
    }
}

/// The release this binary was built from; shown by the dashboard and `--version`.
package enum GatewayVersion {
    package static let current = "0.9.0"
}

/// Where nodes leave their reports and read everyone's.
package protocol StatisticsStore: Sendable {
    func publish(_ report: NodeReport) async throws
    /// The reports of the nodes that are alive, this one included.
    func collect() async throws -> [NodeReport]

    /// False for a single node's store: its figures are then read live, not from reports.
    var isShared: Bool { get }
}

/// A single node's store: only its own report.
package final class LocalStatisticsStore: StatisticsStore {
    private let latest = Mutex<NodeReport?>(nil)

    package init() {}

    package var isShared: Bool { false }

    package func publish(_ report: NodeReport) async {
        latest.withLock { $0 = report }
    }

    package func collect() async -> [NodeReport] {
        latest.withLock { $0.map { [$0] } ?? [] }
    }
}
