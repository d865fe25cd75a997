public import Logging
public import NIOCore
public import NIOPosix
import Synchronization

/// The node's one pub/sub connection. Channels are reference-counted: the first interest
/// sends SUBSCRIBE, the last UNSUBSCRIBE. After any reconnect every channel is subscribed
/// again, and `onResubscribed` runs once all are confirmed, so the owner can fill the gap
/// (pub/sub keeps nothing while a subscriber is away).
public final class RedisSubscriber: Sendable {
    public typealias MessageHandler = @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void

    private struct State {
        var counts: [String: Int] = [:]
        var connection: RedisConnection?
        var link: RedisLinkState = .connecting
        /// Channels whose SUBSCRIBE is not confirmed yet on the current connection.
        var awaitingConfirmation: Set<String> = []
    }

    public let configuration: RedisConfiguration
    /// The loop its connection runs on; pushes are handled there.
    public let eventLoop: any EventLoop
    private let logger: Logger
    private let onMessage: MessageHandler
    private let onResubscribed: @Sendable () -> Void
    private let state = Mutex(State())

    public init(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next(),
        logger: Logger,
        onMessage: @escaping MessageHandler,
        onResubscribed: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.onMessage = onMessage
        self.onResubscribed = onResubscribed
    }

    public var link: RedisLinkState { state.withLock { $0.link } }

    public func subscribe(_ channel: String) {
        let connection = state.withLock { state -> RedisConnection? in
            state.counts[channel, default: 0] += 1
            guard state.counts[channel] == 1 else { return nil }
            return state.connection
        }
        connection?.sendWithoutReply(RedisCommand("SUBSCRIBE", RedisArgument(channel)))
    }

    public func unsubscribe(_ channel: String) {
        let connection = state.withLock { state -> RedisConnection? in
            guard let count = state.counts[channel] else { return nil }
            if count > 1 {
                state.counts[channel] = count - 1
                return nil
            }
            state.counts[channel] = nil
            return state.connection
        }
        connection?.sendWithoutReply(RedisCommand("UNSUBSCRIBE", RedisArgument(channel)))
    }

    /// Drops the current connection (e.g. when the heartbeat says it is half-open); `run`
    /// reconnects and resubscribes.
    public func reconnect() {
        let connection = state.withLock { $0.connection }
        connection?.channel.close(promise: nil)
    }

    public func run() async {
        await ReconnectLoop(configuration: configuration, role: "subscriber", logger: logger).run(
            connect: {
                try await RedisConnection.connect(to: configuration, on: eventLoop) { [weak self] push in
                    self?.handle(push)
                }
            },
            connected: { connection in
                let channels = state.withLock { state -> [String] in
                    state.connection = connection
                    state.link = .connected
                    state.awaitingConfirmation = Set(state.counts.keys)
                    return Array(state.counts.keys)
                }
                if channels.isEmpty {
                    onResubscribed()
                } else {
                    connection.sendWithoutReply(RedisCommand("SUBSCRIBE", channels.map { RedisArgument($0) }))
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

    private func handle(_ push: RedisReply) {
        guard case .array(let parts) = push, let kind = parts.first?.string else { return }
        switch kind {
        case "message":
            guard parts.count == 3, let channel = parts[1].string, case .bulk(let payload) = parts[2] else { return }
            onMessage(channel, payload)
        case "subscribe":
            guard parts.count >= 2, let channel = parts[1].string else { return }
            let complete = state.withLock { state -> Bool in
                guard state.awaitingConfirmation.remove(channel) != nil else { return false }
                return state.awaitingConfirmation.isEmpty
            }
            if complete { onResubscribed() }
        default:
            break
        }
    }
}
