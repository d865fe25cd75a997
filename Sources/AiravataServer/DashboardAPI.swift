import AiravataCore
import AiravataProtocol
import NIOCore
import NIOHTTP1

/// The live operations page: `GET /dashboard` serves one self-contained HTML file (no data
/// in it), and `GET /api/v1/cluster` the figures it polls, to admin tokens only.
enum DashboardAPI {
    static let pagePath: Substring = "/dashboard"
    static let dataPath: Substring = "/api/v1/cluster"

    /// The page may run its own inline script and styles and talk to this origin, nothing else.
    static func page() -> HTTPResponse {
        var response = HTTPResponse(
            status: .ok, contentType: "text/html; charset=utf-8", body: ByteBuffer(string: DashboardPage.html))
        response.headers.add(
            name: "content-security-policy",
            value:
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                + "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        response.headers.add(name: "x-content-type-options", value: "nosniff")
        response.headers.add(name: "referrer-policy", value: "no-referrer")
        response.headers.add(name: "cache-control", value: "no-store")
        return response
    }

    /// 401 without a valid token, 403 for a token without the admin role.
    static func data(
        headers: HTTPHeaders, gateway: Gateway, statistics: StatisticsCache
    ) async -> HTTPResponse {
        let principal: Principal
        do {
            guard let token = WebSocketRoute.bearerToken(headers) else { throw TokenError.missing }
            principal = try await gateway.authenticate(token)
        } catch {
            var response = HTTPResponse.error(.unauthorized, (error as? TokenError)?.clientMessage ?? "Invalid token")
            response.headers.add(name: "www-authenticate", value: "Bearer")
            response.headers.add(name: "cache-control", value: "no-store")
            return response
        }
        guard principal.isAdmin else {
            return .error(.forbidden, "The cluster view requires the \"admin\" role")
        }
        var response = HTTPResponse.json(
            .ok,
            clusterJSON(
                await statistics.current(), answeredBy: gateway.configuration.nodeID, nowMicros: WallClock.nowMicros()))
        response.headers.add(name: "cache-control", value: "no-store")
        return response
    }

    /// Cluster totals and one entry per live node, from the reports every node shares.
    static func clusterJSON(_ snapshot: StatisticsSnapshot, answeredBy node: String, nowMicros: Int64) -> JSONValue {
        var figures: [String: Int] = [:]
        for report in snapshot.nodes {
            for (name, value) in report.status.figures { figures[name, default: 0] &+= value }
        }
        let states = Dictionary(grouping: snapshot.nodes, by: \.status.state).mapValues(\.count)
        return .object([
            "generatedAtMillis": .integer(Int(nowMicros / 1000)),
            "answeredBy": .string(node),
            "totals": .object([
                "activeConnections": .integer(snapshot.activeConnections),
                "totalConnections": .integer(snapshot.totalConnections),
                "nodes": .integer(snapshot.nodes.count),
                "nodesByState": counts(states),
                "ingestedPerSecond": rounded(snapshot.messagesPerSecond),
                "deliveredPerSecond": rounded(snapshot.nodes.reduce(0) { $0 + $1.deliveryRate }),
                "eventsAccepted": .integer(snapshot.totalMessages),
                "deliveries": .integer(snapshot.deliveries),
                "uptimeSeconds": .integer(snapshot.uptimeSeconds),
                "latency": StatisticsSnapshot.latencyJSON(snapshot.recentLatency, seconds: snapshot.recentSeconds),
                "figures": counts(figures),
            ]),
            "nodes": .array(snapshot.nodes.map { nodeJSON($0, nowMicros: nowMicros) }),
        ])
    }

    private static func nodeJSON(_ report: NodeReport, nowMicros: Int64) -> JSONValue {
        var object: JSONObject = [
            "nodeId": .string(report.nodeID),
            "state": .string(report.status.state),
            "busReady": .bool(report.status.busReady),
            "redis": .string(report.status.redis),
            "version": .string(report.status.version),
            "uptimeSeconds": .integer(Int(max(0, nowMicros - report.startedAtMicros) / 1_000_000)),
            "activeConnections": .integer(report.activeConnections),
            "totalConnections": .integer(report.totalConnections),
            "ingestedPerSecond": rounded(report.acceptRate),
            "deliveredPerSecond": rounded(report.deliveryRate),
            "eventsAccepted": .integer(report.eventsAccepted),
            "routed": .integer(report.routed),
            "deliveries": .integer(report.deliveries),
            "latency": StatisticsSnapshot.latencyJSON(report.recentLatency, seconds: report.recentSeconds),
            "figures": counts(report.status.figures),
        ]
        if let age = report.status.heartbeatAgeSeconds { object["heartbeatAgeSeconds"] = rounded(age) }
        if report.reportedAtMicros > 0 {
            object["reportAgeSeconds"] = rounded(Double(max(0, nowMicros - report.reportedAtMicros)) / 1e6)
        }
        return .object(object)
    }

    /// Names in order, so that two answers compare by eye.
    private static func counts(_ values: [String: Int]) -> JSONValue {
        var object = JSONObject()
        for (name, value) in values.sorted(by: { $0.key < $1.key }) { object[name] = .integer(value) }
        return .object(object)
    }

    private static func rounded(_ value: Double) -> JSONValue {
        .double(value.isFinite ? (value * 1000).rounded() / 1000 : 0)
    }
}
