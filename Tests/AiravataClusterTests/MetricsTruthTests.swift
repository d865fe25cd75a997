import AiravataClient
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// What `/metrics` and the cluster view say, checked against what happened: each test here
/// failed against the metrics as they were (routed = ingested, monotonic counts as gauges,
/// a lifetime latency average, no process figures).
@Suite("Cluster: metrics that tell the truth", .serialized)
struct MetricsTruthTests {
    typealias Exposition = MetricsExposition

    static func metrics(_ cluster: ClusterHarness, _ index: Int) async throws -> Exposition {
        let response = try await cluster.http(index).request(method: "GET", path: "/metrics")
        #expect(response.status == 200)
        return Exposition(text: response.bodyString)
    }

    @Test("a node that only delivers counts the events it routed and delivered, with their latency")
    func routedIsNotIngested() async throws {
        try await ClusterHarness.with(nodes: 2) { cluster in
            let listener = try await cluster.connect(1, "/ws/experiments/exp-m", user: "alice", projects: ["proj-m"])
            defer { listener.close() }
            // The experiment's own event first: it tells the cluster whose experiment it is.
            try await cluster.publish(
                0,
                .array(
                    [ClusterEvents.experiment(id: "exp-m", project: "proj-m", owner: "alice")]
                        + (1...4).map { ClusterEvents.progress(experiment: "exp-m", sequence: $0) }))
            _ = try await listener.nextMessage(ofType: "experiment_updated")
            for _ in 1...4 { _ = try await listener.nextMessage(ofType: "experiment_progress") }
            let delivering = try await Self.metrics(cluster, 1)
            #expect(delivering.value("airavata_events_ingested_total") == 0)
            #expect(delivering.value("airavata_events_routed_total") == 5, "the delivering node routed the 5 events")
            #expect(delivering.value("airavata_deliveries_total") == 5)
            #expect(delivering.value("airavata_delivery_latency_seconds_count") == 5)
            #expect(delivering.value("airavata_delivery_latency_seconds_bucket{le=\"+Inf\"}") == 5)
            #expect((delivering.value("airavata_delivery_latency_seconds_sum") ?? -1) >= 0)
            let ingesting = try await Self.metrics(cluster, 0)
            #expect(ingesting.value("airavata_events_ingested_total") == 5)
            #expect(ingesting.value("airavata_events_routed_total") == 5, "every node routes every event")
            #expect(ingesting.value("airavata_deliveries_total") == 0)
            // Nothing was handed to a connection here: no delivery latency to speak of.
            #expect(ingesting.value("airavata_delivery_latency_seconds_count") == 0)
        }
    }

    @Test("counts that only grow are counters named _total, resumes among them")
    func countersAreCounters() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            let token = try await cluster.token("alice")
            let first = try await RawWebSocket.connect(port: cluster.node(0).port, path: "/ws?token=\(token)")
            let connected = try await first.nextMessage()
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            let cursor = try #require(connected["cursor"]?.stringValue)
            first.close()
            let second = try await RawWebSocket.connect(
                port: cluster.node(0).port, path: "/ws?token=\(token)&session=\(session)&cursor=\(cursor)")
            defer { second.close() }
            let again = try await second.nextMessage()
            #expect(again["data"]?["resumed"] == .bool(true))
            _ = try await second.nextMessage()  // the resume's outcome follows the greeting
            let exposition = try await Self.metrics(cluster, 0)
            let types = exposition.types
            for monotonic in [
                "airavata_resumes_total", "airavata_replay_log_reads_total", "airavata_replays_total",
                "airavata_bus_gap_fills_total", "airavata_bus_replayed_events_total",
                "airavata_bus_rejected_messages_total", "airavata_events_routed_total",
            ] {
                #expect(types[monotonic] == "counter", "\(monotonic) is \(types[monotonic] ?? "missing")")
            }
            for (name, type) in types {
                #expect((type == "counter") == name.hasSuffix("_total"), "\(name) is a \(type)")
            }
            for gone in ["airavata_resumes", "airavata_replays", "airavata_delivery_latency_average_seconds"] {
                #expect(types[gone] == nil, "\(gone) is still exported")
            }
            #expect(exposition.value("airavata_resumes_total{outcome=\"recovered\"}") == 1)
            #expect(types["airavata_delivery_latency_seconds"] == "histogram")
        }
    }

    @Test("process figures and the Redis round trip are exported")
    func processFigures() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            // The round trip is measured by the node's statistics write, once a second.
            #expect(
                await eventually {
                    (try? await Self.metrics(cluster, 0).value("airavata_redis_roundtrip_seconds")) != nil
                })
            let exposition = try await Self.metrics(cluster, 0)
            let roundTrip = try #require(exposition.value("airavata_redis_roundtrip_seconds"))
            #expect(roundTrip > 0 && roundTrip < 5)
            let rss = try #require(exposition.value("process_resident_memory_bytes"))
            #expect(rss > 1_000_000 && rss < 10_000_000_000)
            let descriptors = try #require(exposition.value("process_open_fds"))
            let maximum = try #require(exposition.value("process_max_fds"))
            #expect(descriptors >= 3 && descriptors <= maximum)
            #expect((exposition.value("process_threads") ?? 0) >= 1)
            #expect((exposition.value("process_cpu_seconds_total") ?? -1) >= 0)
            let started = try #require(exposition.value("process_start_time_seconds"))
            #expect(abs(started - Date().timeIntervalSince1970) < 600, "start time \(started)")
        }
    }

    @Test("the cluster view: admins only, every node's connections, the cluster's totals")
    func clusterView() async throws {
        try await ClusterHarness.with(nodes: 2) { cluster in
            var sockets: [RawWebSocket] = []
            defer { sockets.forEach { $0.close() } }
            for index in 0..<3 { sockets.append(try await cluster.connect(0, "/ws", user: "u\(index)")) }
            sockets.append(try await cluster.connect(1, "/ws", user: "u9"))
            let http = cluster.http(1)
            let anonymous = try await http.request(method: "GET", path: "/api/v1/cluster")
            #expect(anonymous.status == 401)
            #expect(!anonymous.bodyString.contains("nodes"))
            let user = try await cluster.token("u1")
            let forbidden = try await http.request(
                method: "GET", path: "/api/v1/cluster", headers: [("authorization", "Bearer \(user)")])
            #expect(forbidden.status == 403)
            let admin = try await cluster.token("ops", roles: ["admin"])
            // Reports are shared once a second: wait for both nodes' current counts.
            var view = JSONValue.null
            let settled = await eventually {
                guard
                    let response = try? await http.request(
                        method: "GET", path: "/api/v1/cluster", headers: [("authorization", "Bearer \(admin)")]),
                    response.status == 200, let body = try? JSONValue(parsing: response.bodyString)
                else { return false }
                view = body
                return body["totals"]?["activeConnections"] == .integer(4)
            }
            #expect(settled, "cluster view: \(view.jsonString)")
            guard case .array(let nodes)? = view["nodes"] else {
                Issue.record("no nodes in \(view.jsonString)")
                return
            }
            let byNode = Dictionary(
                uniqueKeysWithValues: nodes.compactMap { node in
                    node["nodeId"]?.stringValue.map { ($0, node) }
                })
            #expect(byNode["n1"]?["activeConnections"] == .integer(3))
            #expect(byNode["n2"]?["activeConnections"] == .integer(1))
            #expect(byNode["n1"]?["state"]?.stringValue == "ready")
            #expect(byNode["n2"]?["redis"]?.stringValue == "up")
            #expect(view["answeredBy"]?.stringValue == "n2")
            #expect(view["totals"]?["nodes"] == .integer(2))
            let page = try await http.request(method: "GET", path: "/dashboard")
            #expect(page.status == 200)
            #expect(page.bodyString.contains("/api/v1/cluster"))
            #expect(page.headers.contains { $0.0.lowercased() == "content-security-policy" })
        }
    }
}
