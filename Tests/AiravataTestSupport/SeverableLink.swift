import NIOCore
import NIOPosix
import Synchronization

/// A loopback TCP hop in front of a server that the test can sever like a network partition:
/// severed, it stops moving bytes in both directions but closes nothing, so each side sees a
/// silent peer (as with packets dropped by a broken switch), not a reset. Healed, what waited
/// in the socket buffers flows on, as TCP retransmission would deliver it.
public final class SeverableLink: Sendable {
    public let port: Int
    private let server: any Channel
    private let registry: Registry

    final class Registry: Sendable {
        private let state = Mutex((severed: false, channels: [any Channel]()))

        /// Reading is how bytes move: a channel that does not read leaves them in the kernel.
        /// The option is set while holding the lock so that calls for one channel reach its
        /// event loop in the order the lock was taken.
        func add(_ pair: [any Channel]) {
            state.withLock { state in
                state.channels.append(contentsOf: pair)
                for channel in pair { channel.setOption(.autoRead, value: !state.severed).whenFailure { _ in } }
            }
        }

        func set(severed: Bool) {
            state.withLock { state in
                state.severed = severed
                for channel in state.channels { channel.setOption(.autoRead, value: !severed).whenFailure { _ in } }
            }
        }

        func closeAll() {
            let channels = state.withLock { state in
                defer { state.channels = [] }
                return state.channels
            }
            for channel in channels { channel.close(promise: nil) }
        }
    }

    private init(port: Int, server: any Channel, registry: Registry) {
        self.port = port
        self.server = server
        self.registry = registry
    }

    /// Listens on a free loopback port and forwards each connection to `targetPort`.
    public static func start(forwardingTo targetPort: Int) async throws -> SeverableLink {
        let registry = Registry()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.autoRead, value: false)
                    .connect(host: "127.0.0.1", port: targetPort)
                    .flatMapThrowing { outbound in
                        try inbound.pipeline.syncOperations.addHandler(Forwarder(peer: outbound))
                        try outbound.pipeline.syncOperations.addHandler(Forwarder(peer: inbound))
                        registry.add([inbound, outbound])
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = server.localAddress?.port else {
            throw TestSupportError("the link's listening socket has no port")
        }
        return SeverableLink(port: port, server: server, registry: registry)
    }

    /// Stops moving bytes, both ways, on every connection, present and future.
    public func sever() { registry.set(severed: true) }

    /// Moves bytes again, starting with what waited.
    public func heal() { registry.set(severed: false) }

    /// Closes every connection through the link, discarding whatever waited in it: what a
    /// peer that died with data in flight leaves behind.
    public func dropConnections() { registry.closeAll() }

    public func stop() {
        server.close(promise: nil)
        registry.closeAll()
    }

    deinit {
        stop()
    }
}

/// Writes what one side reads to the other; a close on one side closes the other.
private final class Forwarder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let peer: any Channel

    init(peer: any Channel) {
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        peer.write(unwrapInboundIn(data), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        peer.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
