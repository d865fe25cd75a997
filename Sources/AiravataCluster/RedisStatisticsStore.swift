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
            "figures", RedisArgument(NodeReportFields.encode(report.status.figures)),
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
            return NodeReportFields.report(fields)
        }
    }
}
