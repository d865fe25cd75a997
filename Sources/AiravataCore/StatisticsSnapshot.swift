package import AiravataProtocol

/// The figures of a `system_status` message and of `/api/v1/stats`.
package struct StatisticsSnapshot: Sendable, Equatable {
    package var totalConnections: Int
    package var activeConnections: Int
    package var totalMessages: Int
    package var messagesPerSecond: Double
    package var averageLatencySeconds: Double
    package var uptimeSeconds: Int
    /// Our additions: frames written to clients, and which node answered.
    package var deliveries: Int
    package var nodeID: String
    /// Our addition: each live node's own figures.
    package var nodes: [NodeReport] = []
    /// Delivery latency over the last minute or so, every node's pooled; `averageLatency` is
    /// its mean, so that a spike shows at once and is gone a minute later.
    package var recentLatency = LatencyHistogram()
    package var recentSeconds: Double = 0

    package init(
        totalConnections: Int,
        activeConnections: Int,
        totalMessages: Int,
        messagesPerSecond: Double,
        averageLatencySeconds: Double,
        uptimeSeconds: Int,
        deliveries: Int,
        nodeID: String
    ) {
        self.totalConnections = totalConnections
        self.activeConnections = activeConnections
        self.totalMessages = totalMessages
        self.messagesPerSecond = messagesPerSecond
        self.averageLatencySeconds = averageLatencySeconds
        self.uptimeSeconds = uptimeSeconds
        self.deliveries = deliveries
        self.nodeID = nodeID
    }

    /// The protocol's field names and types; latency and uptime are strings there.
    package var json: JSONValue {
        .object([
            "totalConnections": .integer(totalConnections),
            "activeConnections": .integer(activeConnections),
            "totalMessages": .integer(totalMessages),
            "messagesPerSecond": .double((messagesPerSecond * 100).rounded() / 100),
            "averageLatency": .string(Self.formatLatency(averageLatencySeconds)),
            "uptime": .string(Self.formatUptime(uptimeSeconds)),
            "deliveries": .integer(deliveries),
            "nodeId": .string(nodeID),
            "nodes": .array(nodes.map(Self.nodeJSON)),
            "latency": Self.latencyJSON(recentLatency, seconds: recentSeconds),
        ])
    }

    /// Our addition: the window's percentiles and mean, in seconds.
    package static func latencyJSON(_ histogram: LatencyHistogram, seconds: Double) -> JSONValue {
        func rounded(_ value: Double) -> JSONValue { .double((value * 1e6).rounded() / 1e6) }
        return .object([
            "windowSeconds": .integer(Int(seconds.rounded())),
            "samples": .integer(histogram.total),
            "p50": rounded(histogram.quantileSeconds(0.5)),
            "p99": rounded(histogram.quantileSeconds(0.99)),
            "mean": rounded(histogram.meanSeconds),
        ])
    }

    private static func nodeJSON(_ node: NodeReport) -> JSONValue {
        .object([
            "nodeId": .string(node.nodeID),
            "activeConnections": .integer(node.activeConnections),
            "totalConnections": .integer(node.totalConnections),
            "totalMessages": .integer(node.eventsAccepted),
            "messagesPerSecond": .double((node.acceptRate * 100).rounded() / 100),
            "deliveries": .integer(node.deliveries),
            "averageLatency": .string(formatLatency(node.recentLatency.meanSeconds)),
        ])
    }

    /// Cluster figures from every live node's report: sums, the pooled recent latency, and
    /// the uptime of the longest-running node.
    package static func aggregate(_ reports: [NodeReport], nodeID: String, nowMicros: Int64) -> StatisticsSnapshot {
        let latency = reports.reduce(LatencyHistogram()) { $0 + $1.recentLatency }
        let started = reports.map(\.startedAtMicros).min() ?? nowMicros
        var snapshot = StatisticsSnapshot(
            totalConnections: reports.reduce(0) { $0 + $1.totalConnections },
            activeConnections: reports.reduce(0) { $0 + $1.activeConnections },
            totalMessages: reports.reduce(0) { $0 + $1.eventsAccepted },
            messagesPerSecond: reports.reduce(0) { $0 + $1.acceptRate },
            averageLatencySeconds: latency.meanSeconds,
            uptimeSeconds: Int(max(0, nowMicros - started) / 1_000_000),
            deliveries: reports.reduce(0) { $0 + $1.deliveries },
            nodeID: nodeID
        )
        snapshot.nodes = reports.sorted { $0.nodeID < $1.nodeID }
        snapshot.recentLatency = latency
        snapshot.recentSeconds = reports.map(\.recentSeconds).max() ?? 0
        return snapshot
    }

    /// `0.05s`, `0.0012s`: seconds with enough digits to show sub-millisecond latency.
    package static func formatLatency(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds > 0 else { return "0s" }
        let micros = Int((seconds * 1_000_000).rounded())
        var text = String(micros / 1_000_000) + "."
        let fraction = String(micros % 1_000_000)
        text += String(repeating: "0", count: 6 - fraction.count) + fraction
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text += "0" }
        return text + "s"
    }

    /// `2h 30m 15s`, `45s`, `3d 1h 0m 2s`.
    package static func formatUptime(_ seconds: Int) -> String {
        let days = seconds / 86_400
        let hours = seconds % 86_400 / 3600
        let minutes = seconds % 3600 / 60
        let secs = seconds % 60
        if days > 0 { return "\(days)d \(hours)h \(minutes)m \(secs)s" }
        if hours > 0 { return "\(hours)h \(minutes)m \(secs)s" }
        if minutes > 0 { return "\(minutes)m \(secs)s" }
        return "\(secs)s"
    }
}
