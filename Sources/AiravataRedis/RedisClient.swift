public import Logging
public import NIOCore
public import NIOPosix
import Synchronization

/// A command connection that keeps itself connected. While Redis is unreachable, commands
/// fail at once with `.notConnected` instead of queueing: callers (ingestion, admission)
/// must answer their own clients quickly.
public final class RedisClient: Sendable {
    private struct State {
        var connection: RedisConnection?
        var link: RedisLinkState = .connecting
    }

    public let configuration: RedisConfiguration
    /// The loop the connection runs on; futures of `submit` complete here.
    public let eventLoop: any EventLoop
    private let logger: Logger
    private let state = Mutex(State())
    private let onConnect: @Sendable (RedisConnection) async throws -> Void

    /// - Parameter onConnect: runs on each new connection before it is used (e.g. SCRIPT LOAD).
    public init(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next(),
        logger: Logger,
        onConnect: @escaping @Sendable (RedisConnection) async throws -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.onConnect = onConnect
    }

    public var link: RedisLinkState { state.withLock { $0.link } }

    /// Keeps the connection up until the task is cancelled.
    public func run() async {
        await ReconnectLoop(configuration: configuration, role: "commands", logger: logger).run(
            connect: {
                let connection = try await RedisConnection.connect(to: configuration, on: eventLoop)
                do {
                    try await onConnect(connection)
                } catch {
                    // Not used, so closed: a Redis that keeps refusing the hook must not collect one per retry.
                    await connection.close()
                    throw error
                }
                return connection
            },
            connected: { connection in
                state.withLock {
                    $0.connection = connection
                    $0.link = .connected
                }
            },
            down: {
                state.withLock {
                    $0.connection = nil
                    $0.link.markDown()
                }
            }
        )
        let connection = state.withLock { $0.connection }
        await connection?.close()
    }

    func current() throws(RedisError) -> RedisConnection {
        guard let connection = state.withLock({ $0.connection }), connection.isActive else {
            throw RedisError(.notConnected, "Redis at \(configuration.redacted) is not reachable")
        }
        return connection
    }

    @discardableResult
    public func send(_ command: RedisCommand) async throws -> RedisReply {
        try await current().send(command)
    }

    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        try await current().pipeline(commands)
    }
}
