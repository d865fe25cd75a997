import AiravataCluster
import AiravataCore
import AiravataServer
import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run a gateway node (the default command).",
        discussion: """
            Without --redis-url the node runs alone with an in-process event bus. Each flag may be \
            given as an environment variable instead, named in brackets below.
            """
    )

    @Option(help: "Address to listen on [AIRAVATA_HOST, default 0.0.0.0].")
    var host: String?
    @Option(help: "Port to listen on [AIRAVATA_PORT, default 8080].")
    var port: String?
    @Option(help: "Redis URL for clustering, redis://[:password@]host:port/db [AIRAVATA_REDIS_URL].")
    var redisURL: String?
    @Option(help: "Comma-separated Redis Sentinels, host:port, instead of --redis-url [AIRAVATA_REDIS_SENTINELS].")
    var redisSentinels: String?
    @Option(help: "Master name the Sentinels know [AIRAVATA_REDIS_SENTINEL_MASTER, default mymaster].")
    var redisSentinelMaster: String?
    @Option(help: "Redis password; overrides one in --redis-url [AIRAVATA_REDIS_PASSWORD].")
    var redisPassword: String?
    @Option(
        help:
            "PEM CA certificates a rediss:// server must be signed by, instead of the system's [AIRAVATA_REDIS_TLS_CA]."
    )
    var redisTlsCa: String?
    @Option(help: "Prefix of every Redis key and channel [AIRAVATA_REDIS_KEY_PREFIX, default airavata].")
    var redisKeyPrefix: String?
    @Option(help: "How long a crashed node's connections keep counting [AIRAVATA_NODE_LEASE, default 30s].")
    var nodeLease: String?
    @Option(help: "Redis outage tolerated before /readyz fails [AIRAVATA_REDIS_OUTAGE_GRACE, default 5s].")
    var redisOutageGrace: String?
    @Option(
        help: ArgumentHelp(
            "Durable ingestion: answer 202 only once this many Redis replicas hold the events (WAIT), else 503 "
                + "[AIRAVATA_DURABLE_REPLICAS, default 0: off].")
    )
    var durableReplicas: String?
    @Option(
        help: "Longest wait for those replicas before answering 503 [AIRAVATA_DURABLE_TIMEOUT, default 1s].")
    var durableTimeout: String?
    @Option(
        help:
            "Form of the events nodes exchange through Redis: auto (the newest every node reads), v1, v2 (what releases before the v2 and v3 bus read; set it before rolling back to one) or v3 [AIRAVATA_BUS_FORMAT, default auto]."
    )
    var busFormat: String?
    @Option(
        help:
            "Events kept for resuming clients [AIRAVATA_REPLAY_LENGTH, default 100000 in Redis, 10000 without Redis]."
    )
    var replayLength: String?
    @Option(help: "HS256 secret shared by every node, at least 32 bytes [AIRAVATA_JWT_SECRET].")
    var jwtSecret: String?
    @Option(help: "Path to a PEM public key for RS256 or ES256 tokens [AIRAVATA_JWT_PUBLIC_KEY].")
    var jwtPublicKey: String?
    @Option(help: "Path to a JWKS file for RS256/ES256 tokens [AIRAVATA_JWKS].")
    var jwks: String?
    @Option(help: "Required token issuer (iss) [AIRAVATA_JWT_ISSUER].")
    var jwtIssuer: String?
    @Option(help: "Required token audience (aud) [AIRAVATA_JWT_AUDIENCE].")
    var jwtAudience: String?
    @Option(help: "This node's name in logs, metrics and statistics [AIRAVATA_NODE_ID, default: host name].")
    var nodeID: String?
    @Option(help: "Connections one user may hold [AIRAVATA_MAX_CONNECTIONS_PER_USER, default 10].")
    var maxConnectionsPerUser: String?
    @Option(help: "Connections one client IP may hold [AIRAVATA_MAX_CONNECTIONS_PER_IP, default 50].")
    var maxConnectionsPerIP: String?
    @Option(
        help: ArgumentHelp(
            "Connections this node holds; adding a node adds this much capacity "
                + "[AIRAVATA_MAX_CONNECTIONS_PER_NODE, default 1000; 0 for no cap].")
    )
    var maxConnectionsPerNode: String?
    @Option(
        help: ArgumentHelp(
            "Connections across every node sharing the Redis; without Redis, this node's "
                + "[AIRAVATA_MAX_CONNECTIONS_CLUSTER, default 0: no cap].")
    )
    var maxConnectionsCluster: String?
    @Option(
        help: ArgumentHelp(
            "Deprecated name of --max-connections-cluster, kept for older configurations; "
                + "given alone, it also leaves the per-node limit off, as before [AIRAVATA_MAX_CONNECTIONS].")
    )
    var maxConnections: String?
    @Option(help: "Heartbeat interval; silent clients are closed after two [AIRAVATA_PING_INTERVAL, default 30s].")
    var pingInterval: String?
    @Option(help: "Interval of system_status broadcasts, 0 for none [AIRAVATA_STATS_INTERVAL, default 30s].")
    var statsInterval: String?
    @Option(help: "Largest inbound WebSocket message in bytes [AIRAVATA_MAX_FRAME_SIZE, default 65536].")
    var maxFrameSize: String?
    @Option(help: "Inbound messages per second per connection, 0 for no limit [AIRAVATA_RATE_LIMIT, default 20].")
    var rateLimit: String?
    @Option(help: "Subscriptions one connection may hold [AIRAVATA_MAX_SUBSCRIPTIONS, default 100].")
    var maxSubscriptions: String?
    @Option(help: "Comma-separated proxy IPs or CIDRs whose X-Forwarded-For is believed [AIRAVATA_TRUSTED_PROXIES].")
    var trustedProxies: String?
    @Option(help: "On SIGTERM, time to keep serving while load balancers notice [AIRAVATA_DRAIN_DELAY, default 5s].")
    var drainDelay: String?
    @Option(help: "On SIGTERM, window the reconnect-and-close is spread over [AIRAVATA_DRAIN_SPREAD, default 2s].")
    var drainSpread: String?
    @Option(
        help:
            "On SIGTERM, longest wait for clients to leave after the first close [AIRAVATA_DRAIN_TIMEOUT, default 30s]."
    )
    var drainTimeout: String?
    @Option(help: "How long a disconnected client can resume its session [AIRAVATA_SESSION_TTL, default 5m].")
    var sessionTtl: String?
    @Option(help: "Resumable sessions per user; more evict the oldest [AIRAVATA_MAX_SESSIONS_PER_USER, default 50].")
    var maxSessionsPerUser: String?
    @Option(help: "Largest ingestion request body in bytes [AIRAVATA_MAX_BODY_SIZE, default 1048576].")
    var maxBodySize: String?
    @Option(
        help: ArgumentHelp(
            "How long an event's producer id is remembered, so that a retried POST is not delivered twice "
                + "[AIRAVATA_DEDUP_WINDOW, default 10m; 0 turns it off].")
    )
    var dedupWindow: String?
    @Option(
        help:
            "Most producer ids remembered; past it the oldest are forgotten early [AIRAVATA_DEDUP_IDS, default 100000]."
    )
    var dedupIds: String?
    @Option(
        help: ArgumentHelp(
            "A plain HTTP request or WebSocket handshake must arrive whole within this; slower ones get 408 "
                + "[AIRAVATA_REQUEST_TIMEOUT, default 10s; 0 turns it off].")
    )
    var requestTimeout: String?
    @Option(help: "Close a kept-alive HTTP connection idle this long [AIRAVATA_IDLE_TIMEOUT, default 60s].")
    var idleTimeout: String?
    @Option(
        help: ArgumentHelp(
            "Connections not yet upgraded and authenticated, per node; more are closed at once "
                + "[AIRAVATA_MAX_PENDING_CONNECTIONS, default 1024; 0 for no cap].")
    )
    var maxPendingConnections: String?
    @Option(
        help: ArgumentHelp(
            "The same per client address; not applied to --trusted-proxies "
                + "[AIRAVATA_MAX_PENDING_CONNECTIONS_PER_IP, default 256; 0 for no cap].")
    )
    var maxPendingConnectionsPerIp: String?
    @Option(
        help: ArgumentHelp(
            "Event-loop threads serving connections and the node's Redis links "
                + "[AIRAVATA_THREADS, default: one per available core].")
    )
    var threads: String?
    @Option(
        help: ArgumentHelp(
            "TCP_NODELAY on client sockets. auto: on, and off while a connection is streamed to (from the 8th send "
                + "in a row, each under 20 ms after the last, to a client silent for 0.5 s; on again when the client "
                + "sends a frame or after 0.5 s without a send), so the kernel joins its small frames while one is "
                + "unacknowledged (Nagle, as Nchan runs) at far less CPU per delivery in fan-out. true: always on. "
                + "false: always off (a frame right after another may wait for a delayed ACK) "
                + "[AIRAVATA_TCP_NODELAY, default auto].")
    )
    var tcpNodelay: String?
    @Option(
        help: ArgumentHelp(
            "Write WebSocket frames and producers' kept-alive ingestion answers to the socket directly, past NIO's "
                + "write path, while NIO holds none of the connection's bytes; false sends every write through NIO "
                + "[AIRAVATA_DIRECT_WRITES, default true]."
        )
    )
    var directWrites: String?
    @Option(help: "PEM certificate chain: serve wss:// and https:// directly [AIRAVATA_TLS_CERT].")
    var tlsCert: String?
    @Option(help: "PEM private key for --tls-cert [AIRAVATA_TLS_KEY].")
    var tlsKey: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical [AIRAVATA_LOG_LEVEL, default info].")
    var logLevel: String?
    @Flag(help: "Development mode: generate a secret if none is set and print ready-to-use tokens and commands.")
    var dev = false

    func run() async throws {
        let settings = try ServeSettings(self)
        LoggingSystem.bootstrap { label in
            var handler = EscapingLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = settings.logLevel
            return handler
        }
        let logger = Logger(label: "airavata.gateway")
        for warning in settings.warnings { logger.warning("\(warning)") }
        let verifier: TokenVerifier
        do {
            verifier = try await TokenVerifier(configuration: settings.token)
        } catch let error as TokenConfigurationError {
            throw ValidationError(error.description)
        }
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        // One set of threads for the clients' sockets and Redis's: with `--threads 1` a node
        // is one thread, and no event or admission crosses to another loop's thread.
        let eventLoops: any EventLoopGroup =
            settings.threads.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) }
            ?? MultiThreadedEventLoopGroup.singleton
        let gateway: Gateway
        if let cluster = settings.cluster {
            let node = ClusterNode(
                configuration: cluster,
                nodeID: settings.gateway.nodeID,
                limits: settings.gateway.limits,
                eventLoops: eventLoops,
                logger: logger
            )
            services.append(.init(service: node))
            gateway = Gateway(
                configuration: settings.gateway,
                verifier: verifier,
                bus: node.bus,
                ownership: node.ownership,
                limiter: node.limiter,
                frames: WebSocketTextFrames(),
                statisticsStore: node.statistics,
                sessions: node.sessions(ttlSeconds: settings.sessionTTLSeconds),
                logger: logger
            )
        } else {
            gateway = Gateway(
                configuration: settings.gateway,
                verifier: verifier,
                bus: EmbeddedEventBus(
                    replayLength: settings.replayLength ?? 10_000, deduplication: settings.deduplication),
                ownership: InMemoryOwnershipIndex(),
                limiter: InMemoryConnectionLimiter(limits: settings.gateway.limits),
                frames: WebSocketTextFrames(),
                sessions: InMemorySessionStore(ttlSeconds: settings.sessionTTLSeconds),
                logger: logger
            )
        }
        let server = GatewayServer(gateway: gateway, configuration: settings.server, group: eventLoops, logger: logger)
        if dev, let secret = settings.token.hmacSecret {
            try await DevBanner.print(secret: secret, host: settings.server.host, port: settings.server.port)
        }
        let group = ServiceGroup(
            configuration: .init(
                // Services stop in reverse order: the server drains first, then the node leaves.
                services: services + [.init(service: server)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
