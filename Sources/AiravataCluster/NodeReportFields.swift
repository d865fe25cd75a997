import AiravataCore

/// A node's statistics report as the fields of its Redis hash, read back. Another node (or
/// anyone with access to Redis) wrote them: every value is bounded before the dashboard or
/// `system_status` shows it.
enum NodeReportFields {
    /// Longest text kept from a report's string fields (node id, state, version): the
    /// dashboard shows them, and a broken or hostile report must not fill it.
    static let maximumFieldLength = 128
    /// Most figures read from one report.
    static let maximumFigures = 64

    /// A node's report from its hash; fields an older release does not write take defaults.
    static func report(_ fields: [String: String]) -> NodeReport {
        func int(_ name: String) -> Int { Int(fields[name] ?? "") ?? 0 }
        func double(_ name: String) -> Double {
            guard let value = Double(fields[name] ?? ""), value.isFinite else { return 0 }
            return value
        }
        func text(_ name: String, _ fallback: String) -> String {
            guard let value = fields[name], !value.isEmpty else { return fallback }
            return String(value.prefix(maximumFieldLength))
        }
        var report = NodeReport(
            nodeID: text("node", "?"),
            startedAtMicros: Int64(fields["started"] ?? "") ?? 0,
            activeConnections: int("active"),
            totalConnections: int("total"),
            eventsAccepted: int("accepted"),
            acceptRate: double("rate"),
            deliveries: int("deliveries")
        )
        report.deliveryRate = double("delivery_rate")
        report.routed = int("routed")
        report.recentLatency = fields["latency_recent"].flatMap(LatencyHistogram.init(encoded:)) ?? LatencyHistogram()
        report.recentSeconds = double("recent_seconds")
        report.reportedAtMicros = Int64(fields["reported"] ?? "") ?? 0
        report.status = NodeStatus(
            state: text("state", "unknown"),
            busReady: fields["bus_ready"] != "0",
            redis: text("redis", "unknown"),
            heartbeatAgeSeconds: fields["heartbeat_age"].flatMap { Double($0) }.flatMap { $0.isFinite ? $0 : nil },
            version: text("version", "unknown"),
            figures: decode(fields["figures"] ?? "")
        )
        return report
    }

    /// `name=value,name=value`; names are ours, ASCII without separators.
    static func encode(_ counters: [String: Int]) -> String {
        counters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    static func decode(_ text: String) -> [String: Int] {
        var counters: [String: Int] = [:]
        for pair in text.split(separator: ",").prefix(maximumFigures) {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].utf8.count <= 64, let value = Int(parts[1]), value >= 0 else { continue }
            counters[String(parts[0])] = value
        }
        return counters
    }
}
