import AiravataCluster
import AiravataCore
import AiravataRedis
import AiravataServer
import ArgumentParser
import Foundation
import Logging
import NIOSSL

/// Everything `serve` needs, resolved from flags, environment and defaults, and checked.
struct ServeSettings {
    var gateway: GatewayConfiguration
    var server: ServerConfiguration
    var token: TokenVerifierConfiguration
    var logLevel: Logger.Level
    /// Set when --redis-url is given.
    var cluster: ClusterConfiguration?
    /// nil: NIO's shared group, one thread per available core.
    var threads: Int?
    /// Events kept for resume; nil for the bus's default.
    var replayLength: Int?
    var sessionTTLSeconds: Double
    /// Said once logging is up: deprecated settings in use.
    var warnings: [String] = []
    /// Producer ids remembered for retry-safe ingestion, by either bus.
    var deduplication: Deduplication

    init(_ command: ServeCommand) throws {
        func setting(_ flag: String, _ value: String?) -> SettingValue { SettingValue(flag: flag, value: value) }

        let redisSetting = setting("redis-url", command.redisURL)
        let sentinelSetting = setting("redis-sentinels", command.redisSentinels)
        let password = setting("redis-password", command.redisPassword).string()
        var redis: RedisConfiguration?
        switch (redisSetting.string(), sentinelSetting.string()) {
        case (let url?, nil):
            do {
                redis = try RedisConfiguration(url: url)
            } catch {
                throw ValidationError("\(redisSetting.source): \(error.message)")
            }
            if let password { redis?.password = password }
        case (nil, let sentinels?):
            do {
                redis = try RedisConfiguration(
                    sentinels: sentinels,
                    master: setting("redis-sentinel-master", command.redisSentinelMaster).string() ?? "mymaster",
                    password: password
                )
            } catch {
                throw ValidationError("\(sentinelSetting.source): \(error.message)")
            }
        case (nil, nil):
            redis = nil
        case (.some, .some):
            throw ValidationError("--redis-url and --redis-sentinels are alternatives: give one")
        }
        let caSetting = setting("redis-tls-ca", command.redisTlsCa)
        if let caFile = caSetting.string() {
            guard redis?.tls == true else { throw ValidationError("\(caSetting.source) needs a rediss:// URL") }
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw ValidationError("\(caSetting.source): cannot read '\(caFile)'")
            }
            redis?.tlsCAFile = caFile
        }
        if let redis {
            var cluster = ClusterConfiguration(redis: redis)
            cluster.keyPrefix = setting("redis-key-prefix", command.redisKeyPrefix).string() ?? cluster.keyPrefix
            cluster.nodeLeaseSeconds = try setting("node-lease", command.nodeLease)
                .duration(default: cluster.nodeLeaseSeconds, minimum: 1)
            cluster.outageGraceSeconds = try setting("redis-outage-grace", command.redisOutageGrace)
                .duration(default: cluster.outageGraceSeconds)
            let formatSetting = setting("bus-format", command.busFormat)
            if let raw = formatSetting.string() {
                guard let format = BusFormat(rawValue: raw) else {
                    throw ValidationError("\(formatSetting.source): expected auto, v1, v2 or v3, got '\(raw)'")
                }
                cluster.busFormat = format
            }
            self.cluster = cluster
        } else {
            self.cluster = nil
        }
        let replaySetting = setting("replay-length", command.replayLength)
        replayLength =
            replaySetting.string() == nil ? nil : try replaySetting.integer(default: 0, range: 100...100_000_000)
        if let replayLength { cluster?.replayLength = replayLength }
        sessionTTLSeconds = try setting("session-ttl", command.sessionTtl).duration(default: 300, minimum: 1)
        let dedupWindow = try setting("dedup-window", command.dedupWindow)
            .duration(default: Double(Deduplication.defaultWindowMillis) / 1000)
        guard dedupWindow <= 86_400 else {
            throw ValidationError("--dedup-window: at most 24h, got \(dedupWindow)s")
        }
        deduplication = Deduplication(
            windowMillis: Int64((dedupWindow * 1000).rounded()),
            capacity: try setting("dedup-ids", command.dedupIds)
                .integer(default: Deduplication.defaultCapacity, range: 1...10_000_000)
        )
        cluster?.deduplication = deduplication
        let replicasSetting = setting("durable-replicas", command.durableReplicas)
        let durableTimeout = setting("durable-timeout", command.durableTimeout)
        if replicasSetting.string() != nil || durableTimeout.string() != nil {
            guard cluster != nil else {
                throw ValidationError(
                    "\(replicasSetting.source): durable ingestion waits for Redis replicas; give --redis-url or --redis-sentinels"
                )
            }
            let timeout = try durableTimeout.duration(default: 1, minimum: 0.001)
            guard timeout <= 60 else { throw ValidationError("\(durableTimeout.source): at most 60s, got \(timeout)s") }
            cluster?.durability = Durability(
                replicas: try replicasSetting.integer(default: 0, range: 0...16),
                timeoutMillis: Int((timeout * 1000).rounded()))
        }

        var server = ServerConfiguration()
        server.host = setting("host", command.host).string() ?? server.host
        server.port = try setting("port", command.port).integer(default: 8080, range: 0...65535)
        server.maxFrameSize = try setting("max-frame-size", command.maxFrameSize)
            .integer(default: server.maxFrameSize, range: 128...(16 << 20))
        server.rateLimit = try setting("rate-limit", command.rateLimit).number(default: server.rateLimit)
        server.pingIntervalSeconds = try setting("ping-interval", command.pingInterval)
            .duration(default: server.pingIntervalSeconds, minimum: 0.05)
        server.tcpNoDelay = try Self.noDelay(setting("tcp-nodelay", command.tcpNodelay), default: server.tcpNoDelay)
        server.directWrites = try setting("direct-writes", command.directWrites).boolean(default: server.directWrites)
        server.maxBodySize = try setting("max-body-size", command.maxBodySize)
            .integer(default: server.maxBodySize, range: 1024...(256 << 20))
        server.trustedProxies = try TrustedProxies(
            setting("trusted-proxies", command.trustedProxies).string() ?? "",
            source: setting("trusted-proxies", command.trustedProxies).source
        )
        server.tls = try Self.tlsContext(
            certificate: setting("tls-cert", command.tlsCert),
            key: setting("tls-key", command.tlsKey)
        )
        let drainDelayDefault = command.dev ? 0 : server.drainDelaySeconds
        server.drainDelaySeconds = try setting("drain-delay", command.drainDelay).duration(default: drainDelayDefault)
        server.drainTimeoutSeconds = try setting("drain-timeout", command.drainTimeout)
            .duration(default: server.drainTimeoutSeconds)
        server.drainSpreadSeconds = try setting("drain-spread", command.drainSpread)
            .duration(default: server.drainSpreadSeconds)
        server.requestTimeoutSeconds = try setting("request-timeout", command.requestTimeout)
            .duration(default: server.requestTimeoutSeconds)
        server.idleTimeoutSeconds = try setting("idle-timeout", command.idleTimeout)
            .duration(default: server.idleTimeoutSeconds)
        server.pendingConnections = PendingConnectionGate.Limits(
            total: try setting("max-pending-connections", command.maxPendingConnections)
                .integer(default: server.pendingConnections.total, range: 0...10_000_000),
            perIP: try setting("max-pending-connections-per-ip", command.maxPendingConnectionsPerIp)
                .integer(default: server.pendingConnections.perIP, range: 0...10_000_000)
        )

        var gateway = GatewayConfiguration(
            nodeID: setting("node-id", command.nodeID).string() ?? ProcessInfo.processInfo.hostName
        )
        let (limits, limitWarnings) = try Self.connectionLimits(command, setting: setting)
        gateway.limits = limits
        warnings += limitWarnings
        gateway.maxSubscriptionsPerConnection = try setting("max-subscriptions", command.maxSubscriptions)
            .integer(default: gateway.maxSubscriptionsPerConnection, range: 1...100_000)
        gateway.sessionTTLSeconds = sessionTTLSeconds
        // Every connection has a session: fewer sessions than connections would make each new
        // connection evict the session of one that is still open. Unset, it follows the limit.
        gateway.maxSessionsPerUser = try setting("max-sessions-per-user", command.maxSessionsPerUser)
            .integer(default: max(gateway.maxSessionsPerUser, gateway.limits.perUser), range: 1...100_000)
        guard gateway.maxSessionsPerUser >= gateway.limits.perUser else {
            throw ValidationError(
                "--max-sessions-per-user (\(gateway.maxSessionsPerUser)) must be at least --max-connections-per-user (\(gateway.limits.perUser))"
            )
        }
        gateway.replayMemory = min(gateway.replayMemory, replayLength ?? cluster?.replayLength ?? 10_000)
        gateway.statsIntervalSeconds = try setting("stats-interval", command.statsInterval)
            .duration(default: gateway.statsIntervalSeconds)

        var token = TokenVerifierConfiguration(
            hmacSecret: setting("jwt-secret", command.jwtSecret).string(),
            publicKeyPEM: try setting("jwt-public-key", command.jwtPublicKey).fileContents(),
            jwksJSON: try setting("jwks", command.jwks).fileContents(),
            issuer: setting("jwt-issuer", command.jwtIssuer).string(),
            audience: setting("jwt-audience", command.jwtAudience).string()
        )
        if command.dev, token.hmacSecret == nil, token.publicKeyPEM == nil, token.jwksJSON == nil {
            // SystemRandomNumberGenerator reads the kernel's CSPRNG.
            var generator = SystemRandomNumberGenerator()
            token.hmacSecret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator))
            }
            .joined()
        }
        let threadSetting = setting("threads", command.threads)
        self.threads = threadSetting.string() == nil ? nil : try threadSetting.integer(default: 1, range: 1...256)
        let levelName = setting("log-level", command.logLevel).string() ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ValidationError(
                "log level must be one of trace, debug, info, notice, warning, error, critical; got '\(levelName)'")
        }
        self.gateway = gateway
        self.server = server
        self.token = token
        self.logLevel = level
    }

    /// Per user and per IP as before; the per-node and cluster-wide totals from their own
    /// flags. The deprecated `--max-connections` always meant cluster-wide: given alone it
    /// keeps that meaning and leaves the per-node cap off, so an old configuration admits
    /// exactly what it did.
    private static func connectionLimits(
        _ command: ServeCommand, setting: (String, String?) -> SettingValue
    ) throws -> (ConnectionLimits, [String]) {
        let legacy = setting("max-connections", command.maxConnections)
        let cluster = setting("max-connections-cluster", command.maxConnectionsCluster)
        let perNode = setting("max-connections-per-node", command.maxConnectionsPerNode)
        var warnings: [String] = []
        var global = try cluster.integer(default: 0, range: 0...10_000_000)
        var perNodeDefault = 1000
        if legacy.string() != nil {
            guard cluster.string() == nil else {
                throw ValidationError(
                    "\(legacy.source) and \(cluster.source) set the same limit; keep only \(cluster.source)")
            }
            global = try legacy.integer(default: 0, range: 1...10_000_000)
            perNodeDefault = 0
            warnings.append(
                "\(legacy.source) is deprecated: it caps the whole cluster; use "
                    + "--max-connections-cluster for that and --max-connections-per-node for each node's capacity")
        }
        let limits = ConnectionLimits(
            perUser: try setting("max-connections-per-user", command.maxConnectionsPerUser)
                .integer(default: 10, range: 1...1_000_000),
            perIP: try setting("max-connections-per-ip", command.maxConnectionsPerIP)
                .integer(default: 50, range: 1...1_000_000),
            global: global,
            perNode: try perNode.integer(default: perNodeDefault, range: 0...10_000_000)
        )
        return (limits, warnings)
    }

    /// `auto`, or on and off as `SettingValue.boolean` reads them.
    private static func noDelay(_ setting: SettingValue, default fallback: TCPNoDelay) throws -> TCPNoDelay {
        guard let raw = setting.string() else { return fallback }
        if raw.lowercased() == "auto" { return .auto }
        do {
            return try setting.boolean(default: true) ? .on : .off
        } catch {
            throw ValidationError("\(setting.source): expected auto, true or false, got '\(raw)'")
        }
    }

    private static func tlsContext(certificate: SettingValue, key: SettingValue) throws -> NIOSSLContext? {
        switch (certificate.string(), key.string()) {
        case (nil, nil):
            return nil
        case (let certificatePath?, let keyPath?):
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map {
                    NIOSSLCertificateSource.certificate($0)
                }
                let privateKey = try NIOSSLPrivateKey(file: keyPath, format: .pem)
                let configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: chain,
                    privateKey: .privateKey(privateKey)
                )
                return try NIOSSLContext(configuration: configuration)
            } catch {
                throw ValidationError(
                    "\(certificate.source)/\(key.source): cannot load the TLS certificate or key: \(error)")
            }
        default:
            throw ValidationError("--tls-cert and --tls-key go together")
        }
    }
}
