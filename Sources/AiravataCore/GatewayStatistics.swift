import Synchronization

/// This node's counters, updated on the hot path without locks.
package final class GatewayStatistics: Sendable {
    private let totalConnections = Atomic<Int>(0)
    private let activeConnections = Atomic<Int>(0)
    private let totalMessages = Atomic<Int>(0)
    private let deliveries = Atomic<Int>(0)
    private let latencyMicrosSum = Atomic<Int>(0)
    private let latencySamples = Atomic<Int>(0)
    private let startedAtMicros: Int64
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

    package var active: Int { activeConnections.load(ordering: .relaxed) }

    /// The rate is averaged since the previous snapshot taken at least a second ago.
    package func snapshot(nowMicros: Int64 = WallClock.nowMicros()) -> StatisticsSnapshot {
        let messages = totalMessages.load(ordering: .relaxed)
        let rate = rateWindow.withLock { window in
            let elapsed = Double(nowMicros - window.micros) / 1_000_000
            if elapsed >= 1 {
                window.rate = Double(messages - window.messages) / elapsed
                window.micros = nowMicros
                window.messages = messages
            }
            return window.rate
        }
        let samples = latencySamples.load(ordering: .relaxed)
        let average = samples == 0 ? 0 : Double(latencyMicrosSum.load(ordering: .relaxed)) / Double(samples) / 1e6
        return StatisticsSnapshot(
            totalConnections: totalConnections.load(ordering: .relaxed),
            activeConnections: activeConnections.load(ordering: .relaxed),
            totalMessages: messages,
            messagesPerSecond: rate,
            averageLatencySeconds: average,
            uptimeSeconds: Int((nowMicros - startedAtMicros) / 1_000_000),
            deliveries: deliveries.load(ordering: .relaxed),
            nodeID: nodeID
        )
    }
}
