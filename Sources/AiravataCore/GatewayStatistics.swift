import Synchronization

/// This node's counters, updated on the hot path without locks.
package final class GatewayStatistics: Sendable {
    private let totalConnections = Atomic<Int>(0)
    private let activeConnections = Atomic<Int>(0)
    private let totalMessages = Atomic<Int>(0)
    private let eventsAccepted = Atomic<Int>(0)
    private let deliveries = Atomic<Int>(0)
    private let latencyMicrosSum = Atomic<Int>(0)
    private let latencySamples = Atomic<Int>(0)
    private let resumesRecovered = Atomic<Int>(0)
    private let resumesFailed = Atomic<Int>(0)
    package let startedAtMicros: Int64
    private let rateWindow: Mutex<(micros: Int64, messages: Int, rate: Double)>
    package let nodeID: String

    package init(nodeID: String, nowMicros: Int64 = WallClock.nowMicros()) {
        self.nodeID = nodeID
        self.startedAtMicros = nowMicros
        self.rateWindow = Mutex((nowMicros, 0, 0))
    }

    package func connectionOpened() {
        totalConnections.add(1, ordering: .relaxed)
        activeConnections.add(1, ordering: .relaxed)
    }

    package func connectionClosed() {
        activeConnections.subtract(1, ordering: .relaxed)
    }

    package func eventRouted(latencyMicros: Int64, recipients: Int) {
        totalMessages.add(1, ordering: .relaxed)
        deliveries.add(recipients, ordering: .relaxed)
        latencyMicrosSum.add(Int(max(0, latencyMicros)), ordering: .relaxed)
        latencySamples.add(1, ordering: .relaxed)
    }

    /// A client asked to resume; `recovered` when it got every event it missed.
    package func resumed(recovered: Bool) {
        if recovered {
            resumesRecovered.add(1, ordering: .relaxed)
        } else {
            resumesFailed.add(1, ordering: .relaxed)
        }
    }

    package var resumes: (recovered: Int, failed: Int) {
        (resumesRecovered.load(ordering: .relaxed), resumesFailed.load(ordering: .relaxed))
    }

    package var active: Int { activeConnections.load(ordering: .relaxed) }

    /// Events this node accepted through its ingestion API.
    package func eventsAccepted(_ count: Int) {
        eventsAccepted.add(count, ordering: .relaxed)
    }

    /// Events routed on this node (with a shared bus, every node routes every event).
    package var routed: Int { totalMessages.load(ordering: .relaxed) }

    /// The rate is averaged since the previous snapshot taken at least a second ago.
    package func snapshot(nowMicros: Int64 = WallClock.nowMicros()) -> StatisticsSnapshot {
        StatisticsSnapshot.aggregate([report(nowMicros: nowMicros)], nodeID: nodeID, nowMicros: nowMicros)
    }

    /// This node's figures for the cluster statistics.
    package func report(nowMicros: Int64 = WallClock.nowMicros()) -> NodeReport {
        let messages = eventsAccepted.load(ordering: .relaxed)
        let rate = rateWindow.withLock { window in
            let elapsed = Double(nowMicros - window.micros) / 1_000_000
            if elapsed >= 1 {
                window.rate = Double(messages - window.messages) / elapsed
                window.micros = nowMicros
                window.messages = messages
            }
            return window.rate
        }
        return NodeReport(
            nodeID: nodeID,
            startedAtMicros: startedAtMicros,
            activeConnections: activeConnections.load(ordering: .relaxed),
            totalConnections: totalConnections.load(ordering: .relaxed),
            eventsAccepted: messages,
            acceptRate: rate,
            deliveries: deliveries.load(ordering: .relaxed),
            latencyMicrosSum: latencyMicrosSum.load(ordering: .relaxed),
            latencySamples: latencySamples.load(ordering: .relaxed)
        )
    }
}
