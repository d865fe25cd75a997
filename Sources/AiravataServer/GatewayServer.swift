package import AiravataCore
import AiravataProtocol
package import Logging
package import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A node's network front: the listening sockets serving HTTP and WebSocket upgrades (one per
/// event loop on Linux, see `listen`), plus the gateway's long-running work (bus delivery,
/// statistics broadcasts).
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
        let listeners: [any Channel]
        do {
            listeners = try await listen()
        } catch {
            boundPromise.fail(error)
            throw error
        }
        let port = listeners[0].localAddress?.port ?? configuration.port
        boundPromise.succeed(port)
        logger.info(
            "listening",
            metadata: [
                "host": "\(configuration.host)", "port": "\(port)", "node.id": "\(gateway.configuration.nodeID)",
                "listeners": "\(listeners.count)",
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
            for listener in listeners { try? await listener.close() }
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

    /// Binds the node's port. On Linux, with several event loops, every loop gets a listening
    /// socket of its own on the same port (`SO_REUSEPORT`): the kernel spreads the connects
    /// over them and each loop accepts and serves its own, where one listener handed every
    /// other connection to another loop's thread (a wakeup and a chain of futures per
    /// connect). Elsewhere, where the option does not spread connects, one listener serves
    /// all loops.
    ///
    /// Sockets that all ask for `SO_REUSEPORT` may share a port, so a second node started on
    /// a port in use would silently take half its connects: the port is first bound without
    /// the option, which fails as any bind to a port in use does.
    private func listen() async throws -> [any Channel] {
        let initializer = childInitializer()
        let (host, port) = (configuration.host, configuration.port)
        let loops = Array(group.makeIterator())
        #if os(Linux)
            let perLoop = loops.count > 1
        #else
            let perLoop = false
        #endif
        guard perLoop else {
            return [try await bootstrap(group, reusePort: false, initializer).bind(host: host, port: port).get()]
        }
        // Resolved once: every listener binds the same address (a name may resolve to several).
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        if port != 0 {
            let probe = try await bootstrap(loops[0], reusePort: false, initializer).bind(to: address).get()
            try await probe.close()
        }
        var listeners = [try await bootstrap(loops[0], reusePort: true, initializer).bind(to: address).get()]
        // With port 0, the port the kernel chose.
        let bound = listeners[0].localAddress ?? address
        do {
            for loop in loops.dropFirst() {
                listeners.append(try await bootstrap(loop, reusePort: true, initializer).bind(to: bound).get())
            }
        } catch {
            for listener in listeners { try? await listener.close() }
            throw error
        }
        return listeners
    }

    private static let reusePort = NIOBSDSocket.Option(rawValue: SO_REUSEPORT)

    /// A listener whose accepted connections are served by `group`.
    private func bootstrap(
        _ group: any EventLoopGroup, reusePort: Bool,
        _ initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> ServerBootstrap {
        // No options per accepted socket: NIO applies those through a chain of futures per
        // connect. TCP_NODELAY is set on the listener, and Linux gives accepted sockets the
        // listener's setting (ServerSocketOptionTests checks a node's client sockets); the
        // receive allocator is set in the initializer, directly; SO_REUSEADDR matters only to
        // a socket that binds.
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(Self.reusePort), value: reusePort ? 1 : 0)
            .serverChannelOption(.tcpOption(.tcp_nodelay), value: configuration.tcpNoDelay == .off ? 0 : 1)
            .childChannelInitializer(initializer)
    }

    /// Sets up an accepted connection's pipeline; every listener shares the state behind it
    /// (the API, the cap on pending connections).
    private func childInitializer() -> @Sendable (any Channel) -> EventLoopFuture<Void> {
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
            makeHandler: { peer, head, answer in
                guard let route = WebSocketRoute(head: head) else { return nil }
                return WebSocketConnectionHandler(
                    gateway: gateway,
                    configuration: configuration,
                    metrics: metrics,
                    statistics: statistics,
                    route: route,
                    handshakeAnswer: answer,
                    clientIP: configuration.trustedProxies.clientIP(peer: peer, headers: head.headers),
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
        return { channel in
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
                // Of NIO's HTTP/1 server handlers, only the request decoder, and that only
                // when a connection needs it:
                // - no response encoder: every answer is written as bytes already encoded
                //   (`HTTPResponse.serialized`), and every response header the gateway
                //   writes is a constant or a number, never a client's bytes (NIO's
                //   validator cost a pass over each header of each answer, ~6% of an
                //   ingesting node);
                // - the decoder joins only when `IngestFastPath` hands a connection over
                //   (or, with the fast path off, at once): a WebSocket whose handshake the
                //   fast path read never has one (adding it and removing it at the upgrade
                //   was ~5% of a node's CPU in a connect storm);
                // - no upgrade handler: HTTPRequestHandler makes WebSocket upgrades itself,
                //   and the decoder passes on what follows an upgrade request;
                // - no pipelining assistance: HTTPRequestHandler answers requests in order
                //   itself, without withholding reads (see its channelRead);
                // - no protocol-error handler: HTTPRequestHandler answers a request the
                //   decoder cannot read with the 400 itself (see its errorCaught).
                let requests = HTTPRequestHandler(
                    api: api, limits: httpLimits, peer: peer,
                    forwardedClient: { headers in
                        guard configuration.trustedProxies.trusts(peer) else { return nil }
                        let client = configuration.trustedProxies.clientIP(peer: peer, headers: headers)
                        return client == peer ? nil : client
                    },
                    websocket: websocket)
                if configuration.fastIngest {
                    try channel.pipeline.syncOperations.addHandlers([
                        IngestFastPath(
                            api: api, maxBodySize: configuration.maxBodySize,
                            viaTrustedProxy: configuration.trustedProxies.trusts(peer),
                            directWrites: configuration.directWrites && configuration.tls == nil, clocks: requests),
                        requests,
                    ])
                } else {
                    try channel.pipeline.syncOperations.addHandlers([HTTPRequestHandler.makeDecoder(), requests])
                }
            }
        }
    }
}
