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
    private let duplicates: Counter
    private let ingestRejected: [String: Counter]
    private let httpRefused: [String: Counter]
    private let socketWritersClaimed: Counter
    private let socketWritersUnproven: Counter
    private let socketHandOvers: Counter
    private let streamingStarted: Counter
    private let streamingStopped: Counter
    private let fastIngestRequests: Counter
    private let directAnswers: Counter
    private let fastUpgrades: Counter
    private let activeConnections: Gauge
    private let routedEvents: Counter
    private let deliveries: Counter
    /// Counts the core keeps itself, last exported: each export adds what is new.
    private let exported = Mutex([String: Int]())
    /// The outcome counters an operator watches (refusals, slow consumers, rate limits): also
    /// shared with the cluster through the node's report, for the dashboard.
    private let outcomes = Mutex([String: Int]())
    private let busReady: Gauge
    private let redisUp: [String: Gauge]
    private let heartbeatAge: Gauge
    private let gapFills: Counter
    private let replayed: Counter
    private let busRejected: Counter
    private let busHeld: Gauge
    private let resumesRecovered: Counter
    private let resumesFailed: Counter
    private let replayReads: Counter
    private let replaysAnswered: Counter

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
        duplicates = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_events_duplicate_total", unitName: "",
                helpText: "Events whose id was accepted before within --dedup-window: answered, not published again"))
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
        func socketWriters(_ outcome: String) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "airavata_direct_writers_total", unitName: "",
                    helpText: "Connections whose frames went to their socket directly from their first delivery on "
                        + "(claimed), or stayed on NIO's write path because their socket was not proven (unproven)"),
                labels: [("outcome", outcome)]
            )
        }
        socketWritersClaimed = socketWriters("claimed")
        socketWritersUnproven = socketWriters("unproven")
        socketHandOvers = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_direct_write_handovers_total", unitName: "",
                helpText: "Direct sends the kernel did not take whole (the client's buffers were full): the rest "
                    + "went through NIO's write path, and the connection's later frames followed it there"))
        func streamingChanges(_ change: String) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: "airavata_streamed_connections_total", unitName: "",
                    helpText: "With --tcp-nodelay auto: switches of a client socket to Nagle's algorithm when its "
                        + "connection began to be streamed to (started), and back to TCP_NODELAY when it went quiet, "
                        + "its client sent a frame, or the connection closed with a close frame (stopped)"),
                labels: [("change", change)]
            )
        }
        streamingStarted = streamingChanges("started")
        streamingStopped = streamingChanges("stopped")
        fastIngestRequests = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_http_fast_ingest_total", unitName: "",
                helpText: "Ingestion requests read from the connection's bytes before NIO's HTTP parser "
                    + "(the plainest POST /api/v1/events with a proven token); the rest took the general path"))
        directAnswers = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_http_direct_answers_total", unitName: "",
                helpText: "Fast-path ingestion answers the kernel took whole from a direct write to the producer's "
                    + "socket, past NIO's write path (from a kept-alive connection's third answer on)"))
        fastUpgrades = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_http_fast_upgrades_total", unitName: "",
                helpText: "WebSocket handshakes read from the connection's bytes before NIO's HTTP parser "
                    + "(the plainest GET /ws...); the rest took the general path"))
        activeConnections = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_connections_active", unitName: "", helpText: "Open WebSocket connections"))
        routedEvents = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "airavata_events_routed_total", unitName: "",
                helpText:
                    "Events that reached this node, from any node's ingestion, and were matched to its connections"
            ))
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
        gapFills = registry.makeCounter(
            descriptor: Self.descriptor(
                "airavata_bus_gap_fills_total", "Times a pub/sub gap was refilled from the replay log")
        )
        replayed = registry.makeCounter(
            descriptor: Self.descriptor(
                "airavata_bus_replayed_events_total", "Events delivered from the replay log after a gap")
        )
        busRejected = registry.makeCounter(
            descriptor: Self.descriptor(
                "airavata_bus_rejected_messages_total",
                "Messages from the events channel skipped as malformed or forged")
        )
        busHeld = registry.makeGauge(
            descriptor: Self.descriptor(
                "airavata_bus_held_messages", "Live events held while a pub/sub gap is filled from the log")
        )
        func resumes(_ outcome: String) -> Counter {
            registry.makeCounter(
                descriptor: Self.descriptor("airavata_resumes_total", "Resumes asked of this node, by outcome"),
                labels: [("outcome", outcome)]
            )
        }
        resumesRecovered = resumes("recovered")
        resumesFailed = resumes("failed")
        replayReads = registry.makeCounter(
            descriptor: Self.descriptor(
                "airavata_replay_log_reads_total", "Reads of the replay log for resuming clients (one serves many)")
        )
        replaysAnswered = registry.makeCounter(
            descriptor: Self.descriptor("airavata_replays_total", "Resuming clients answered from those reads")
        )
    }

    func connectionOpened() { opened.increment() }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
    func connectionClosed() { closed.increment() }
    func messageReceived() { received.increment() }
    func rateLimited() {
        rateLimitedCounter.increment()
        count("rate_limited_messages")
    }
    func slowConsumer() {
        slowConsumers.increment()
        count("slow_consumer_closes")
    }
    func pingTimeout() {
        pingTimeouts.increment()
        count("ping_timeouts")
    }
    func oversizedMessage() { oversized.increment() }
    func eventsIngested(_ count: Int) { ingested.increment(by: Int64(count)) }
    func duplicatesIgnored(_ count: Int) {
        duplicates.increment(by: Int64(count))
        outcomes.withLock { $0["duplicate_events", default: 0] += count }
    }
    func ingestRejected(_ reason: String) {
        ingestRejected[reason]?.increment()
        count("ingest_rejected_" + reason)
    }
    func httpRefused(_ reason: HTTPRefusal) { httpRefused[reason.rawValue]?.increment() }
    /// A connection's first delivery gave it a `SocketWriter` (or its socket was not proven).
    func socketWriter(claimed: Bool) { (claimed ? socketWritersClaimed : socketWritersUnproven).increment() }
    func socketHandOver() { socketHandOvers.increment() }
    /// With `TCPNoDelay.auto`: a connection's socket switched to Nagle (started) or back.
    func streaming(started: Bool) { (started ? streamingStarted : streamingStopped).increment() }
    func fastIngestRequest() { fastIngestRequests.increment() }
    func directAnswer() { directAnswers.increment() }
    func fastUpgrade() { fastUpgrades.increment() }

    func connectionRefused(_ refusal: ConnectionRefusal) {
        switch refusal {
        case .authentication:
            refusedAuth.increment()
            count("refused_authentication")
        case .forbidden:
            refusedForbidden.increment()
            count("refused_forbidden")
        case .limit(let exceeded):
            refusedLimit[exceeded.kind]?.increment()
            count("refused_limit_" + exceeded.kind)
        case .unavailable:
            refusedUnavailable.increment()
            count("refused_unavailable")
        }
    }

    private func count(_ outcome: String) {
        outcomes.withLock { $0[outcome, default: 0] += 1 }
    }

    /// The outcome counters since start, by name, for the node's report.
    package var outcomeCounts: [String: Int] { outcomes.withLock { $0 } }

    /// Adds to `counter` what `value` (a count the core keeps) gained since the last export.
    private func advance(_ counter: Counter, _ name: String, to value: Int) {
        let delta = exported.withLock { last in
            let delta = value - last[name, default: 0]
            last[name] = max(value, last[name, default: 0])
            return delta
        }
        if delta > 0 { counter.increment(by: Int64(delta)) }
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

    /// Everything the core counts itself, read at export time.
    package struct CoreFigures: Sendable {
        package var routed: Int
        package var deliveries: Int
        package var activeConnections: Int
        package var latency: LatencyHistogram
        package var redisRoundTripSeconds: Double?

        package init(
            routed: Int, deliveries: Int, activeConnections: Int, latency: LatencyHistogram,
            redisRoundTripSeconds: Double?
        ) {
            self.routed = routed
            self.deliveries = deliveries
            self.activeConnections = activeConnections
            self.latency = latency
            self.redisRoundTripSeconds = redisRoundTripSeconds
        }
    }

    package func exposition(core: CoreFigures, bus: EventBusHealth, resumes: ResumeFigures) -> [UInt8] {
        advance(resumesRecovered, "resumes_recovered", to: resumes.recovered)
        advance(resumesFailed, "resumes_failed", to: resumes.failed)
        advance(replayReads, "replay_reads", to: resumes.logReads)
        advance(replaysAnswered, "replays", to: resumes.replays)
        advance(gapFills, "gap_fills", to: bus.gapFills)
        advance(replayed, "replayed", to: bus.replayedEvents)
        advance(busRejected, "bus_rejected", to: bus.rejectedMessages)
        advance(routedEvents, "routed", to: core.routed)
        advance(deliveries, "deliveries", to: core.deliveries)
        busReady.set(bus.ready ? 1.0 : 0.0)
        for link in bus.links { redisUp[link.role]?.set(link.up ? 1.0 : 0.0) }
        heartbeatAge.set(bus.heartbeatAgeSeconds ?? 0)
        busHeld.set(Double(bus.heldMessages))
        activeConnections.set(Double(core.activeConnections))
        var text = registry.emitToBuffer()
        text += Self.histogramText(core.latency)
        if let roundTrip = core.redisRoundTripSeconds {
            text += Array(
                """
                # HELP airavata_redis_roundtrip_seconds Time of this node's latest statistics write to Redis (one round trip)
                # TYPE airavata_redis_roundtrip_seconds gauge
                airavata_redis_roundtrip_seconds \(roundTrip)

                """.utf8)
        }
        text += ProcessFigures.read().prometheusText
        return text
    }

    /// The delivery-latency histogram in Prometheus text: cumulative buckets in seconds.
    static func histogramText(_ histogram: LatencyHistogram) -> [UInt8] {
        let name = "airavata_delivery_latency_seconds"
        var text = "# HELP \(name) Time from an event's acceptance to its hand-off to this node's connections\n"
        text += "# TYPE \(name) histogram\n"
        var cumulative = 0
        for (index, count) in histogram.counts.enumerated() {
            cumulative += count
            let bound =
                index < LatencyHistogram.boundsMicros.count
                ? String(Double(LatencyHistogram.boundsMicros[index]) / 1e6) : "+Inf"
            text += "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        text += "\(name)_sum \(Double(histogram.sumMicros) / 1e6)\n"
        text += "\(name)_count \(cumulative)\n"
        return Array(text.utf8)
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
    /// More requests pipelined behind an unanswered one than a connection may hold.
    case pipelined
    /// A request the HTTP parser cannot read (answered 400, the connection closed).
    case malformed
    /// A client that pipelines requests without reading the answers: the answer that finds
    /// the node's buffers full says `connection: close`, and the connection closes.
    case unread
}
