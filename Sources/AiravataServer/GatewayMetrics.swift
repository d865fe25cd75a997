package import AiravataCore
package import Prometheus
import Synchronization

/// This node's Prometheus metrics. Handles are made once; labels are outcomes, never ids.
package final class GatewayMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry
    private let opened: Counter
    private let closed: Counter
    private let refusedAuth: Counter
    private let refusedForbidden: Counter
    private let refusedLimit: [String: Counter]
    private let refusedUnavailable: Counter
    private let received: Counter
    private let rateLimitedCounter: Counter
    private let slowConsumers: Counter
    private let pingTimeouts: Counter
    private let oversized: Counter
    private let ingested: Counter
    private let ingestRejected: [String: Counter]
    private let httpRefused: [String: Counter]
    private let activeConnections: Gauge
    private let routedEvents: Counter
    private let deliveries: Counter
    private let averageLatency: Gauge
    private let reported = Mutex((events: 0, deliveries: 0))
    private let busReady: Gauge
    private let redisUp: [String: Gauge]
    private let heartbeatAge: Gauge
    private let gapFills: Gauge
    private let replayed: Gauge
    private let busRejected: Gauge
    private let busHeld: Gauge
    private let resumesRecovered: Gauge
    private let resumesFailed: Gauge
    private let replayReads: Gauge
    private let replaysAnswered: Gauge

    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        opened = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_connections_opened_total", unitName: "",
                helpText: "WebSocket connections admitted"))
        closed = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_connections_closed_total", unitName: "",
                helpText: "Admitted connections that ended"))
        func refused(_ reason: String) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "airavata_connections_refused_total", unitName: "",
                    helpText: "WebSocket connections refused after the upgrade"),
                labels: [("reason", reason)]
            )
        }
        refusedAuth = refused("authentication")
        refusedForbidden = refused("forbidden")
        refusedLimit = [
            "user": refused("limit_user"), "ip": refused("limit_ip"), "global": refused("limit_global"),
            "node": refused("limit_node"),
        ]
        refusedUnavailable = refused("unavailable")
        received = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_client_messages_total", unitName: "", helpText: "Messages received from clients"))
        rateLimitedCounter = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_client_messages_rate_limited_total", unitName: "",
                helpText: "Client messages refused by the per-connection rate limit"))
        slowConsumers = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_slow_consumer_disconnects_total", unitName: "",
                helpText: "Connections closed because their outbound queue overflowed"))
        pingTimeouts = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_ping_timeouts_total", unitName: "",
                helpText: "Connections closed after two silent ping intervals"))
        oversized = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_oversized_messages_total", unitName: "",
                helpText: "Connections closed for a message over the maximum frame size"))
        ingested = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_events_ingested_total", unitName: "", helpText: "Events accepted on this node"))
        func rejected(_ reason: String) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "airavata_ingest_rejected_total", unitName: "", helpText: "Ingestion requests refused"),
                labels: [("reason", reason)]
            )
        }
        ingestRejected = [
            "invalid": rejected("invalid"), "unauthenticated": rejected("unauthenticated"),
            "forbidden": rejected("forbidden"), "too_large": rejected("too_large"),
            "unavailable": rejected("unavailable"),
        ]
        func refusedHTTP(_ reason: String) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "airavata_http_refused_total", unitName: "",
                    helpText: "Connections or requests refused before any WebSocket existed"),
                labels: [("reason", reason)]
            )
        }
        httpRefused = Dictionary(
            uniqueKeysWithValues: HTTPRefusal.allCases.map { ($0.rawValue, refusedHTTP($0.rawValue)) })
        activeConnections = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_connections_active", unitName: "", helpText: "Open WebSocket connections"))
        routedEvents = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_events_routed_total", unitName: "", helpText: "Events routed on this node"))
        deliveries = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_deliveries_total", unitName: "", helpText: "Event frames handed to connections"))
        busReady = registry.makeGauge(
            descriptor: Self.descriptor("airavata_bus_ready", "1 while the event bus can carry events")
        )
        redisUp = Dictionary(
            uniqueKeysWithValues: ["commands", "subscriber"].map { role in
                (
                    role,
                    registry.makeGauge(
                        descriptor: Self.descriptor("airavata_redis_up", "1 while the Redis connection is up"),
                        labels: [("role", role)]
                    )
                )
            }
        )
        heartbeatAge = registry.makeGauge(
            descriptor: Self.descriptor(
                "airavata_bus_heartbeat_age_seconds",
                "Seconds since this node last heard its own heartbeat through Redis pub/sub"
            )
        )
        gapFills = registry.makeGauge(
            descriptor: Self.descriptor(
                "airavata_bus_gap_fills", "Times a pub/sub gap was refilled from the replay log")
        )
        replayed = registry.makeGauge(
            descriptor: Self.descriptor(
                "airavata_bus_replayed_events", "Events delivered from the replay log after a gap")
        )
        busRejected = registry.makeGauge(
            descriptor: Self.descriptor(
                "airavata_bus_rejected_messages",
                "Messages from the events channel skipped as malformed or forged (since start)")
        )
        busHeld = registry.makeGauge(
            descriptor: Self.descriptor(
                "airavata_bus_held_messages", "Live events held while a pub/sub gap is filled from the log")
        )
        func resumes(_ outcome: String) -> Gauge {
            registry.makeGauge(
                descriptor: Self.descriptor(
                    "airavata_resumes", "Sessions resumed on this node since it started, by outcome"),
                labels: [("outcome", outcome)]
            )
        }
        resumesRecovered = resumes("recovered")
        resumesFailed = resumes("failed")
        replayReads = registry.makeGauge(
            descriptor: Self.descriptor(
                "airavata_replay_log_reads", "Reads of the replay log for resuming clients (one serves many)")
        )
        replaysAnswered = registry.makeGauge(
            descriptor: Self.descriptor("airavata_replays", "Resuming clients answered from those reads")
        )
        averageLatency = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_delivery_latency_average_seconds", unitName: "",
                helpText: "Mean time from acceptance to hand-off to connections"))
    }

    func connectionOpened() { opened.increment() }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
    func connectionClosed() { closed.increment() }
    func messageReceived() { received.increment() }
    func rateLimited() { rateLimitedCounter.increment() }
    func slowConsumer() { slowConsumers.increment() }
    func pingTimeout() { pingTimeouts.increment() }
    func oversizedMessage() { oversized.increment() }
    func eventsIngested(_ count: Int) { ingested.increment(by: Int64(count)) }
    func ingestRejected(_ reason: String) { ingestRejected[reason]?.increment() }
    func httpRefused(_ reason: HTTPRefusal) { httpRefused[reason.rawValue]?.increment() }

    func connectionRefused(_ refusal: ConnectionRefusal) {
        switch refusal {
        case .authentication: refusedAuth.increment()
        case .forbidden: refusedForbidden.increment()
        case .limit(let exceeded): refusedLimit[exceeded.kind]?.increment()
        case .unavailable: refusedUnavailable.increment()
        }
    }

    /// The Prometheus text, with the core's lock-free counters brought up to date first.
    /// What resuming clients cost this node: outcomes, and log reads against clients served.
    package struct ResumeFigures: Sendable {
        package var recovered: Int
        package var failed: Int
        package var logReads: Int
        package var replays: Int

        package init(recovered: Int, failed: Int, logReads: Int, replays: Int) {
            self.recovered = recovered
            self.failed = failed
            self.logReads = logReads
            self.replays = replays
        }
    }

    package func exposition(statistics: StatisticsSnapshot, bus: EventBusHealth, resumes: ResumeFigures) -> [UInt8] {
        resumesRecovered.set(Double(resumes.recovered))
        resumesFailed.set(Double(resumes.failed))
        replayReads.set(Double(resumes.logReads))
        replaysAnswered.set(Double(resumes.replays))
        busReady.set(bus.ready ? 1.0 : 0.0)
        for link in bus.links { redisUp[link.role]?.set(link.up ? 1.0 : 0.0) }
        heartbeatAge.set(bus.heartbeatAgeSeconds ?? 0)
        gapFills.set(Double(bus.gapFills))
        replayed.set(Double(bus.replayedEvents))
        busRejected.set(Double(bus.rejectedMessages))
        busHeld.set(Double(bus.heldMessages))
        let (newEvents, newDeliveries) = reported.withLock { last in
            let delta = (statistics.totalMessages - last.events, statistics.deliveries - last.deliveries)
            last = (statistics.totalMessages, statistics.deliveries)
            return delta
        }
        routedEvents.increment(by: Int64(max(0, newEvents)))
        deliveries.increment(by: Int64(max(0, newDeliveries)))
        activeConnections.set(Double(statistics.activeConnections))
        averageLatency.set(statistics.averageLatencySeconds)
        return registry.emitToBuffer()
    }
}

/// Why a connection or request was turned away before any WebSocket existed; a metric label.
enum HTTPRefusal: String, CaseIterable {
    /// An upgrade that broke RFC 6455 or asked for no endpoint of ours.
    case badUpgrade = "bad_upgrade"
    /// A request not received within the request timeout.
    case timeout
    /// Too many connections not yet authenticated, in total or from one address.
    case pendingTotal = "pending_total"
    case pendingPerIP = "pending_per_ip"
}
