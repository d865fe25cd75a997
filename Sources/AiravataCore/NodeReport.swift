import Synchronization

/// One node's figures, as it shares them with the cluster for statistics.
package struct NodeReport: Sendable, Equatable {
    package var nodeID: String
    package var startedAtMicros: Int64
    package var activeConnections: Int
    package var totalConnections: Int
    /// Events accepted through this node's ingestion API.
    package var eventsAccepted: Int
    package var acceptRate: Double
    package var deliveries: Int
    package var latencyMicrosSum: Int
    package var latencySamples: Int

    package init(
        nodeID: String,
        startedAtMicros: Int64,
        activeConnections: Int,
        totalConnections: Int,
        eventsAccepted: Int,
        acceptRate: Double,
        deliveries: Int,
        latencyMicrosSum: Int,
        latencySamples: Int
    ) {
        self.nodeID = nodeID
        self.startedAtMicros = startedAtMicros
        self.activeConnections = activeConnections
        self.totalConnections = totalConnections
        self.eventsAccepted = eventsAccepted
        self.acceptRate = acceptRate
        self.deliveries = deliveries
        self.latencyMicrosSum = latencyMicrosSum
        self.latencySamples = latencySamples
    }
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
