package import AiravataCore
import AiravataProtocol
package import Logging
package import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// A node's network front: one listening socket serving HTTP and WebSocket upgrades,
/// plus the gateway's long-running work (bus delivery, statistics broadcasts).
package final class GatewayServer: Service {
    private let gateway: Gateway
    private let configuration: ServerConfiguration
    private let readiness: Readiness
    private let metrics: GatewayMetrics
    private let group: any EventLoopGroup
    private let logger: Logger
    private let boundPromise: EventLoopPromise<Int>
    /// Cluster figures cost Redis 2 + N commands: everyone who asks shares one snapshot a second.
    private let statistics: StatisticsCache

    /// The port actually bound; useful with port 0.
    package var boundPort: EventLoopFuture<Int> { boundPromise.futureResult }

    package init(
        gateway: Gateway,
        configuration: ServerConfiguration,
        readiness: Readiness = Readiness(),
        metrics: GatewayMetrics = GatewayMetrics(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.gateway = gateway
        self.configuration = configuration
        self.readiness = readiness
        self.metrics = metrics
        self.group = group
        self.logger = logger
        self.boundPromise = group.next().makePromise(of: Int.self)
        self.statistics = StatisticsCache(maxAgeSeconds: 1) { await gateway.clusterStatistics() }
        gateway.statistics.setStatusProvider { [weak gateway] in
            Self.status(gateway: gateway, readiness: readiness, metrics: metrics)
        }
    }

    /// This node as the cluster's dashboard shows it: lifecycle, Redis, outcome counters and
    /// process figures.
    private static func status(gateway: Gateway?, readiness: Readiness, metrics: GatewayMetrics) -> NodeStatus {
        var figures = metrics.outcomeCounts
        let process = ProcessFigures.read()
        figures["rss_bytes"] = process.residentBytes
        figures["open_fds"] = process.openDescriptors
        guard let gateway else { return NodeStatus(state: readiness.current.name, figures: figures) }
        let health = gateway.busHealth()
        let resumes = gateway.statistics.resumes
        let replay = gateway.replay.counts
        figures["resumes_recovered"] = resumes.recovered
        figures["resumes_failed"] = resumes.failed
        figures["replay_log_reads"] = replay.reads
        figures["replays"] = replay.replays
        figures["bus_gap_fills"] = health.gapFills
        figures["bus_replayed_events"] = health.replayedEvents
        let redis = health.links.isEmpty ? "none" : health.links.allSatisfy(\.up) ? "up" : "down"
        return NodeStatus(
            state: readiness.current.name, busReady: health.ready, redis: redis,
            heartbeatAgeSeconds: health.heartbeatAgeSeconds, figures: figures)
    }

    package func run() async throws {
        let channel: any Channel
        do {
            channel = try await bootstrap().bind(host: configuration.host, port: configuration.port).get()
        } catch {
            boundPromise.fail(error)
            throw error
        }
        let port = channel.localAddress?.port ?? configuration.port
        boundPromise.succeed(port)
        logger.info(
            "listening",
            metadata: [
                "host": "\(configuration.host)", "port": "\(port)", "node.id": "\(gateway.configuration.nodeID)",
            ]
        )
        let gateway = self.gateway
        let statsInterval = gateway.configuration.statsIntervalSeconds
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await gateway.run() }
            if statsInterval > 0 {
                group.addTask {
                    // Cancellation ends the loop; it is how the server stops it, not a failure.
                    while (try? await Task.sleep(for: .milliseconds(Int64(statsInterval * 1000)))) != nil {
                        gateway.broadcastLocally(await gateway.statusMessage())
                    }
                }
            }
            let renewInterval = max(0.5, gateway.configuration.sessionTTLSeconds / 3)
            group.addTask {
                while (try? await Task.sleep(for: .milliseconds(Int64(renewInterval * 1000)))) != nil {
                    await gateway.renewSessions()
                }
            }
            let reportInterval = gateway.configuration.reportSeconds
            group.addTask {
                repeat {
                    await gateway.reportStatistics()
                } while (try? await Task.sleep(for: .milliseconds(Int64(reportInterval * 1000)))) != nil
            }
            readiness.set(.ready)
            // Wait for SIGTERM/SIGINT (or cancellation), then drain.
            let cancelled: Bool
            do {
                try await gracefulShutdown()
                cancelled = false
            } catch {
                cancelled = true
            }
            readiness.set(.draining)
            if !cancelled, configuration.drainDelaySeconds > 0 {
                logger.info(
                    "readiness off; serving on during the drain delay",
                    metadata: ["seconds": "\(configuration.drainDelaySeconds)"])
                try? await Task.sleep(for: .milliseconds(Int64(configuration.drainDelaySeconds * 1000)))
            }
            try? await channel.close()
            await drain()
            group.cancelAll()
        }
        logger.info("stopped")
    }

    /// Closes the open connections, telling each client to reconnect elsewhere, and waits
    /// (bounded by the drain timeout) until they are gone.
    private func drain() async {
        let cancelled = Task.isCancelled
        let sinks = gateway.index.allSinks()
        logger.info("draining", metadata: ["connections": "\(sinks.count)"])
        let notice = gateway.control(
            .systemStatus,
            prefix: "system",
            data: .object([
                "action": .string(ControlAction.reconnect.rawValue), "reason": .string("server shutting down"),
            ])
        )
        let frame = gateway.frame(notice)
        // Spread the closes so the other nodes do not take every reconnect in the same instant.
        let window = cancelled ? 0 : min(configuration.drainSpreadSeconds, configuration.drainTimeoutSeconds / 2)
        let outlets = sinks.compactMap { $0 as? ConnectionOutlet }
        let clock = ContinuousClock()
        let start = clock.now
        for (position, outlet) in outlets.enumerated() {
            if window > 0, outlets.count > 1 {
                let due = start + .seconds(window * Double(position) / Double(outlets.count))
                if due > clock.now { try? await clock.sleep(until: due) }
            }
            outlet.closeForRestart(notice: frame)
        }
        let deadline = start + .seconds(configuration.drainTimeoutSeconds)
        while !cancelled, gateway.statistics.active > 0, clock.now < deadline {
            try? await clock.sleep(for: .milliseconds(20))
        }
        if !cancelled, gateway.statistics.active > 0 {
            logger.warning(
                "drain timeout passed with clients still connected",
                metadata: ["connections": "\(gateway.statistics.active)"])
        }
    }

    /// Receive buffer sizes per connection, in bytes: the initial one is kept while a
    /// connection is idle, so it is most of what an idle connection costs beyond NIO's own.
    static let receiveBuffer = (minimum: 64, initial: 1024, maximum: 65536)

    private func bootstrap() -> ServerBootstrap {
        let gateway = self.gateway
        let configuration = self.configuration
        let metrics = self.metrics
        let statistics = self.statistics
        let logger = self.logger
        let api = GatewayHTTPAPI(
            gateway: gateway, readiness: readiness, metrics: metrics, statistics: statistics, logger: logger)
        let gate = PendingConnectionGate(limits: configuration.pendingConnections)
        let httpLimits = HTTPRequestHandler.Limits(
            maxBodySize: configuration.maxBodySize, requestTimeout: configuration.requestTimeoutSeconds,
            idleTimeout: configuration.idleTimeoutSeconds, maxHeldParts: configuration.maxHeldRequestParts,
            finalAnswerGrace: configuration.finalAnswerGraceSeconds, linger: configuration.lingerSeconds)
        let websocket = WebSocketUpgrade(
            maxFrameSize: configuration.maxFrameSize,
            makeHandler: { channel, head, answer in
                guard let route = WebSocketRoute(head: head) else { return nil }
                return WebSocketConnectionHandler(
                    gateway: gateway,
                    configuration: configuration,
                    metrics: metrics,
                    statistics: statistics,
                    route: route,
                    handshakeAnswer: answer,
                    clientIP: configuration.trustedProxies.clientIP(
                        peer: channel.remoteAddress?.ipAddress ?? "unknown",
                        headers: head.headers
                    ),
                    logger: logger
                )
            }
        )
        // Each channel keeps its last receive buffer. NIO starts it at 2 KiB; an idle
        // WebSocket reads a handshake and a few small messages, so start smaller and let it
        // grow for the client that sends more.
        let receiveAllocator = AdaptiveRecvByteBufferAllocator(
            minimum: Self.receiveBuffer.minimum, initial: Self.receiveBuffer.initial,
            maximum: Self.receiveBuffer.maximum)
        // No options per accepted socket: NIO applies those through a chain of futures per
        // connect. TCP_NODELAY is set on the listener, and Linux gives accepted sockets the
        // listener's setting (ServerSocketOptionTests checks a node's client sockets); the
        // receive allocator is set in the initializer, directly; SO_REUSEADDR matters only to
        // a socket that binds.
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.tcpOption(.tcp_nodelay), value: configuration.tcpNoDelay ? 1 : 0)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.syncOptions?.setOption(.recvAllocator, value: receiveAllocator)
                    let peer = channel.remoteAddress?.ipAddress ?? "unknown"
                    try channel.pipeline.syncOperations.addHandler(
                        PendingConnectionHandler(
                            gate: gate, ip: peer, countPerIP: !configuration.trustedProxies.trusts(peer),
                            onRefused: { refusal in
                                metrics.httpRefused(refusal == .total ? .pendingTotal : .pendingPerIP)
                            }))
                    if let tls = configuration.tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    // NIO's HTTP/1 server handlers, set up by hand:
                    // - no upgrade handler: HTTPRequestHandler makes WebSocket upgrades itself,
                    //   and the decoder passes on what follows an upgrade request;
                    // - no outbound header validation: every response header the gateway writes
                    //   is a constant or a number, never a client's bytes, and the validator cost
                    //   a pass over each header of each answer (~6% of an ingesting node);
                    // - no pipelining assistance: HTTPRequestHandler answers requests in order
                    //   itself, without withholding reads (see its channelRead);
                    // - no protocol-error handler: HTTPRequestHandler answers a request the
                    //   decoder cannot read with the 400 itself (see its errorCaught).
                    if configuration.fastIngest {
                        try channel.pipeline.syncOperations.addHandler(
                            IngestFastPath(
                                api: api, maxBodySize: configuration.maxBodySize,
                                viaTrustedProxy: configuration.trustedProxies.trusts(peer)))
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        HTTPResponseEncoder(),
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                        HTTPRequestHandler(
                            api: api, limits: httpLimits,
                            forwardedClient: { headers in
                                guard configuration.trustedProxies.trusts(peer) else { return nil }
                                let client = configuration.trustedProxies.clientIP(peer: peer, headers: headers)
                                return client == peer ? nil : client
                            },
                            websocket: websocket),
                    ])
                }
            }
    }
}
