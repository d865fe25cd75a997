import Logging
public import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// One connection to Redis. Commands are pipelined: each call writes its command, the
/// commands written in one turn of the connection's event loop leave in one flush, and each
/// reply is matched by order. A command that gets no reply within the timeout closes the
/// connection (a half-open socket would otherwise hang every caller); `RedisChannelHandler`
/// keeps that clock.
public final class RedisConnection: Sendable {
    public let channel: any Channel
    private let commandTimeout: TimeAmount
    /// A flush is queued on the channel's loop; commands written before it runs leave with it.
    private let flushQueued: NIOLoopBoundBox<Bool>

    private init(channel: any Channel, commandTimeout: TimeAmount) {
        self.channel = channel
        self.commandTimeout = commandTimeout
        self.flushQueued = .makeBoxSendingValue(false, eventLoop: channel.eventLoop)
    }

    /// Connects, logs in (`AUTH`) and selects the database.
    /// - Parameter onPush: set for a subscriber connection; receives pub/sub pushes on the event loop.
    public static func connect(
        to configuration: RedisConfiguration,
        on eventLoop: any EventLoop,
        connectTimeout: TimeAmount = .seconds(2),
        commandTimeout: TimeAmount = .seconds(5),
        onPush: (@Sendable (RedisReply) -> Void)? = nil
    ) async throws -> RedisConnection {
        if case .sentinel(let addresses, let master) = configuration.endpoint {
            var resolved = configuration
            let (host, port) = try await masterAddress(
                addresses: addresses, master: master, on: eventLoop, timeout: connectTimeout)
            resolved.endpoint = .tcp(host: host, port: port)
            return try await connect(
                to: resolved, on: eventLoop, connectTimeout: connectTimeout, commandTimeout: commandTimeout,
                onPush: onPush)
        }
        let sslContext = try configuration.tls ? tlsContext(caFile: configuration.tlsCAFile) : nil
        let serverHostname: String? =
            if case .tcp(let host, _) = configuration.endpoint { tlsServerName(host) } else { nil }
        // Completed by the handshake: a refused certificate must fail the connect, not make a
        // connection that drops at once (that reset the backoff and logged every retry).
        let handshake = sslContext == nil ? nil : eventLoop.makePromise(of: Void.self)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let tls = try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname)
                        try channel.pipeline.syncOperations.addHandler(tls)
                    }
                    if let handshake {
                        try channel.pipeline.syncOperations.addHandler(TLSHandshakeWatcher(handshake))
                    }
                    try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(onPush: onPush))
                }
            }
        let channel: any Channel
        do {
            switch configuration.endpoint {
            case .tcp(let host, let port):
                channel = try await bootstrap.connect(host: host, port: port).get()
            case .unixSocket(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            case .sentinel:
                preconditionFailure("Sentinel endpoints are resolved above")
            }
        } catch {
            handshake?.fail(error)
            throw error
        }
        if let handshake {
            let timeout = eventLoop.scheduleTask(in: connectTimeout) {
                handshake.fail(
                    RedisError(.timeout, "no TLS handshake with \(configuration.redacted) within the timeout"))
            }
            defer { timeout.cancel() }
            do {
                try await handshake.futureResult.get()
            } catch {
                try? await channel.close()
                throw error
            }
        }
        let connection = RedisConnection(channel: channel, commandTimeout: commandTimeout)
        do {
            if let password = configuration.password {
                var arguments: [RedisArgument] = []
                if let username = configuration.username { arguments.append(RedisArgument(username)) }
                arguments.append(RedisArgument(password))
                _ = try await connection.send(RedisCommand("AUTH", arguments))
            }
            if configuration.database != 0 {
                _ = try await connection.send(RedisCommand("SELECT", RedisArgument(configuration.database)))
            }
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    private static func tlsContext(caFile: String?) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        return try NIOSSLContext(configuration: tls)
    }

    /// The name sent as SNI and checked against the certificate's DNS names. An IP address
    /// may not be sent as SNI (RFC 6066, and NIOSSL refuses it); without a name the
    /// certificate is checked against the address connected to, i.e. its IP SANs.
    static func tlsServerName(_ host: String) -> String? {
        (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }

    /// Asks each Sentinel in turn for the master's address; the first answer wins.
    private static func masterAddress(
        addresses: [String],
        master: String,
        on eventLoop: any EventLoop,
        timeout: TimeAmount
    ) async throws -> (String, Int) {
        var failures: [String] = []
        for address in addresses {
            guard let (host, port) = RedisConfiguration.hostAndPort(address) else { continue }
            do {
                let sentinel = try await connect(
                    to: RedisConfiguration(endpoint: .tcp(host: host, port: port)), on: eventLoop,
                    connectTimeout: timeout, commandTimeout: timeout)
                defer { Task { await sentinel.close() } }
                let reply = try await sentinel.send(
                    RedisCommand("SENTINEL", "get-master-addr-by-name", RedisArgument(master)))
                if let parts = reply.array, parts.count == 2, let masterHost = parts[0].string,
                    let masterPort = parts[1].string.flatMap({ Int($0) })
                {
                    return (masterHost, masterPort)
                }
                failures.append("\(address): does not know master '\(master)'")
            } catch {
                failures.append("\(address): \(error)")
            }
        }
        throw RedisError(.notConnected, "no Sentinel named the master: \(failures.joined(separator: "; "))")
    }

    /// Sends one command; an error reply is thrown as `RedisError.server`.
    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RedisReply {
        let reply = try await reply(to: command).get()
        if case .error(let message) = reply { throw RedisError(.server, message) }
        return reply
    }

    /// Sends commands back to back and collects their replies in order; error replies stay
    /// in the array as `.error`.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        let futures = commands.map { reply(to: $0, flush: false) }
        channel.flush()
        var replies: [RedisReply] = []
        replies.reserveCapacity(futures.count)
        for future in futures { replies.append(try await future.get()) }
        return replies
    }

    /// Writes a command whose answers arrive as pushes (SUBSCRIBE and friends).
    public func sendWithoutReply(_ command: RedisCommand) {
        channel.writeAndFlush(RedisRequest(bytes: command.encoded(), promise: nil), promise: nil)
    }

    /// Writes the command; the future completes with its reply (an error reply included, as
    /// `.error`) on the connection's event loop.
    func reply(to command: RedisCommand, flush: Bool = true) -> EventLoopFuture<RedisReply> {
        let promise = channel.eventLoop.makePromise(of: RedisReply.self)
        let request = RedisRequest(
            bytes: command.encoded(), promise: promise, name: command.arguments.first ?? [], timeout: commandTimeout)
        // A write to a connection that is closing (e.g. right after another command timed
        // out) never reaches the handler that would fail it: fail the reply at once instead
        // of leaving the caller to wait out the timeout. A reply already given is kept.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            promise.fail(RedisError(.connectionClosed, "the command could not be written to Redis: \(error)"))
        }
        let channel = self.channel
        if channel.eventLoop.inEventLoop {
            channel.write(request, promise: written)
            if flush { flushSoon() }
        } else {
            channel.eventLoop.execute {
                channel.write(request, promise: written)
                if flush { self.flushSoon() }
            }
        }
        return promise.futureResult
    }

    /// Flushes once the tasks already queued on the channel's loop have run: the commands
    /// that many connections' admissions send in one turn of the loop leave in one write,
    /// and Redis reads them in one read. On the channel's loop.
    private func flushSoon() {
        guard !flushQueued.value else { return }
        flushQueued.value = true
        channel.eventLoop.execute {
            self.flushQueued.value = false
            self.channel.flush()
        }
    }

    public var isActive: Bool { channel.isActive }

    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    public func close() async {
        try? await channel.close()
    }
}

/// Reports the end of a TLS handshake to `connect`: done, failed, or the connection gone.
private final class TLSHandshakeWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    private let handshake: EventLoopPromise<Void>

    init(_ handshake: EventLoopPromise<Void>) {
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { handshake.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handshake.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake.fail(RedisError(.connectionClosed, "the connection closed during the TLS handshake"))
        context.fireChannelInactive()
    }
}
