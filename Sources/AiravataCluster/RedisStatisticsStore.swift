package import AiravataCore
package import AiravataRedis
import Foundation

/// Each node writes its report to a hash that expires; readers sum the live ones.
package final class RedisStatisticsStore: StatisticsStore {
    private let client: RedisClient
    private let keys: RedisKeys
    private let instance: String
    private let lifetimeMillis: Int

    package init(client: RedisClient, keyPrefix: String, instance: String, reportSeconds: Double) {
        self.client = client
        self.keys = RedisKeys(prefix: keyPrefix)
        self.instance = instance
        self.lifetimeMillis = Int(max(3, reportSeconds * 3) * 1000)
    }

    package var isShared: Bool { true }

    package func publish(_ report: NodeReport) async throws {
        let key = RedisArgument(keys.nodeStatistics(instance: instance))
        let nowMillis = Int(Date().timeIntervalSince1970 * 1000)
        let fields: [RedisArgument] = [
            key,
            "node", RedisArgument(report.nodeID),
            "started", RedisArgument(report.startedAtMicros),
            "active", RedisArgument(report.activeConnections),
            "total", RedisArgument(report.totalConnections),
            "accepted", RedisArgument(report.eventsAccepted),
            "rate", RedisArgument(String(report.acceptRate)),
            "deliveries", RedisArgument(report.deliveries),
            "delivery_rate", RedisArgument(String(report.deliveryRate)),
            "routed", RedisArgument(report.routed),
            "latency_recent", RedisArgument(report.recentLatency.encoded),
            "recent_seconds", RedisArgument(String(report.recentSeconds)),
            "reported", RedisArgument(report.reportedAtMicros),
            "state", RedisArgument(report.status.state),
            "bus_ready", RedisArgument(report.status.busReady ? 1 : 0),
            "redis", RedisArgument(report.status.redis),
            "heartbeat_age", RedisArgument(report.status.heartbeatAgeSeconds.map { String($0) } ?? ""),
            "version", RedisArgument(report.status.version),
            "figures", RedisArgument(Self.encode(report.status.figures)),
        ]
        _ = try await client.pipeline([
            RedisCommand("HSET", fields),
            RedisCommand("PEXPIRE", key, RedisArgument(lifetimeMillis)),
            RedisCommand("ZADD", RedisArgument(keys.reportingNodes), RedisArgument(nowMillis), RedisArgument(instance)),
        ])
    }

    package func collect() async throws -> [NodeReport] {
        let nowMillis = Int(Date().timeIntervalSince1970 * 1000)
        let cutoff = nowMillis - lifetimeMillis
        let replies = try await client.pipeline([
            RedisCommand("ZREMRANGEBYSCORE", RedisArgument(keys.reportingNodes), "-inf", RedisArgument("(\(cutoff)")),
            RedisCommand("ZRANGE", RedisArgument(keys.reportingNodes), 0, -1),
        ])
        let instances = replies.last?.array?.compactMap(\.string) ?? []
        guard !instances.isEmpty else { return [] }
        let hashes = try await client.pipeline(
            instances.map { RedisCommand("HGETALL", RedisArgument(keys.nodeStatistics(instance: $0))) }
        )
        return hashes.compactMap { reply in
            guard let flat = reply.array, !flat.isEmpty else { return nil }
            var fields: [String: String] = [:]
            for index in stride(from: 0, to: flat.count - 1, by: 2) {
                if let key = flat[index].string, let value = flat[index + 1].string { fields[key] = value }
            }
            return Self.report(fields)
        }
    }

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
