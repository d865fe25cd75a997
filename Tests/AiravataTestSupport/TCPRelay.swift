import NIOCore
import NIOPosix
import Synchronization

/// A loopback TCP relay in front of a server (Redis), which a test can make misbehave the way
/// a broken network does: a connection that stays open but carries nothing (half-open, as
/// after a NAT or firewall forgets it), and a server that cannot be reached.
public final class TCPRelay: Sendable {
    public let port: Int
    private let target: (host: String, port: Int)
    private let listener: Mutex<(any Channel)?>
    private let shared: Shared

    /// What every pair of connections consults, from any event loop.
    final class Shared: Sendable {
        struct Link {
            var client: any Channel
            var sent: [UInt8] = []
            var silent = false
            var open = true
        }

        struct State {
            /// Every connection accepted, kept after it closes (a test counts them); the
            /// channel held here keeps its identifier from being reused.
            var links: [ObjectIdentifier: Link] = [:]
        }

        let state = Mutex(State())

        /// Bytes a client sent that are remembered to recognise its connection (a Redis
        /// subscriber by its SUBSCRIBE); only the start of a connection matters.
        static let rememberedBytes = 4096
    }

    private init(port: Int, target: (host: String, port: Int), listener: any Channel, shared: Shared) {
        self.port = port
        self.target = target
        self.listener = Mutex(listener)
        self.shared = shared
    }

    /// Listens on a free loopback port and forwards each connection to `targetPort`.
    public static func start(to targetPort: Int, host: String = "127.0.0.1") async throws -> TCPRelay {
        let shared = Shared()
        let listener = try await listen(port: 0, target: (host, targetPort), shared: shared)
        guard let port = listener.localAddress?.port else {
            throw TestSupportError("the relay has no local port")
        }
        return TCPRelay(port: port, target: (host, targetPort), listener: listener, shared: shared)
    }

    private static func listen(
        port: Int, target: (host: String, port: Int), shared: Shared
    ) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { client in
                shared.state.withLock { $0.links[ObjectIdentifier(client)] = Shared.Link(client: client) }
                return ClientBootstrap(group: client.eventLoop)
                    .channelInitializer { server in
                        server.pipeline.addHandler(
                            Forwarder(partner: client, shared: shared, key: client, outbound: false))
                    }
                    .connect(host: target.host, port: target.port)
                    .flatMap { server in
                        client.pipeline.addHandler(
                            Forwarder(partner: server, shared: shared, key: client, outbound: true)
                        )
                        .flatMap { client.setOption(.autoRead, value: true) }
                    }
                    .flatMapError { error in client.close().flatMapThrowing { throw error } }
            }
            .bind(host: "127.0.0.1", port: port).get()
    }

    /// Closes the listening socket: new connections are refused (Redis unreachable), open
    /// ones are left as they are.
    public func stopListening() async throws {
        let current = listener.withLock { listener in
            defer { listener = nil }
            return listener
        }
        try await current?.close()
    }

    /// Listens on the same port again.
    public func startListening() async throws {
        let channel = try await Self.listen(port: port, target: target, shared: shared)
        listener.withLock { $0 = channel }
    }

    /// Stops carrying bytes, both ways, on every open connection whose client has sent
    /// `marker`, and leaves those connections open: to both ends they look alive and idle.
    /// Returns how many connections went silent.
    @discardableResult
    public func silence(connectionsThatSent marker: String) -> Int {
        let needle = Array(marker.utf8)
        return shared.state.withLock { state in
            var count = 0
            for (key, link) in state.links where link.open && link.sent.firstRange(of: needle) != nil {
                state.links[key]?.silent = true
                count += 1
            }
            return count
        }
    }

    /// Connections ever accepted and forwarded.
    public var acceptedConnections: Int { shared.state.withLock { $0.links.count } }

    /// Connections, open or closed since, whose client sent `marker`.
    public func connectionCount(thatSent marker: String) -> Int {
        let needle = Array(marker.utf8)
        return shared.state.withLock { state in
            state.links.values.count { $0.sent.firstRange(of: needle) != nil }
        }
    }

    public func stop() {
        listener.withLock { $0?.close(promise: nil) }
        let clients = shared.state.withLock { state in
            state.links.values.filter(\.open).map(\.client)
        }
        for client in clients { client.close(promise: nil) }
    }
}

/// Copies what one side reads to its partner, unless the pair was silenced; a close on
/// either side closes the other.
private final class Forwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let partner: any Channel
    private let shared: TCPRelay.Shared
    private let key: ObjectIdentifier
    /// True for the client's side (bytes toward the server).
    private let outbound: Bool

    init(partner: any Channel, shared: TCPRelay.Shared, key: any Channel, outbound: Bool) {
        self.partner = partner
        self.shared = shared
        self.key = ObjectIdentifier(key)
        self.outbound = outbound
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let silent = shared.state.withLock { state -> Bool in
            guard let link = state.links[key], link.open else { return true }
            if outbound, link.sent.count < TCPRelay.Shared.rememberedBytes {
                state.links[key]?.sent += buffer.readableBytesView.prefix(
                    TCPRelay.Shared.rememberedBytes - link.sent.count)
            }
            return link.silent
        }
        guard !silent else { return }
        partner.writeAndFlush(buffer, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let key = self.key
        shared.state.withLock { $0.links[key]?.open = false }
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
