import NIOCore
import NIOPosix

/// A bare TCP connection for sending exactly the bytes a hostile client would and seeing
/// exactly what comes back, including whether and when the server hung up.
public final class RawTCP: Sendable {
    private let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// `reading: false` leaves what the server sends in the kernel until `startReading()`;
    /// `receiveBufferBytes` shrinks the socket's buffer so a server's writes back up soon;
    /// `halfClosure: true` keeps the connection open, for sending, once the server has ended
    /// its side (`awaitEnd`).
    public static func connect(
        port: Int, host: String = "127.0.0.1", reading: Bool = true, receiveBufferBytes: Int? = nil,
        halfClosure: Bool = false
    ) async throws -> RawTCP {
        let collector = Collector()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: reading)
            .channelOption(.allowRemoteHalfClosure, value: halfClosure)
        if let receiveBufferBytes {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: .init(receiveBufferBytes))
        }
        let channel =
            try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: host, port: port).get()
        return RawTCP(channel: channel, collector: collector)
    }

    public func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    public func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Waits until the server closes the connection (or `timeout` passes) and returns what it
    /// sent; `closed` says whether the close came.
    public func readUntilClosed(timeout: Duration = .seconds(10)) async throws -> (text: String, closed: Bool) {
        let closed = try await collector.wait(on: channel.eventLoop, timeout: timeout, readsText: false) { _, open, _ in
            !open
        }
        return (await collector.text(on: channel.eventLoop), closed)
    }

    /// Waits until the received bytes contain `marker`, or the connection closes, or `timeout`.
    public func read(until marker: String, timeout: Duration = .seconds(10)) async throws -> String {
        _ = try await collector.wait(on: channel.eventLoop, timeout: timeout) { text, open, _ in
            text.contains(marker) || !open
        }
        return await collector.text(on: channel.eventLoop)
    }

    /// Waits until the server has ended its side of the stream (or closed the connection);
    /// returns what it sent, or nil if neither happened within `timeout`.
    public func awaitEnd(timeout: Duration = .seconds(10)) async throws -> String? {
        let ended = try await collector.wait(on: channel.eventLoop, timeout: timeout, readsText: false) {
            _, open, ended in ended || !open
        }
        return ended ? await collector.text(on: channel.eventLoop) : nil
    }

    public var isOpen: Bool { channel.isActive }

    /// Reads again after `connect(reading: false)`.
    public func startReading() async throws {
        try await channel.setOption(.autoRead, value: true).get()
        channel.read()
    }

    public func close() {
        channel.close(promise: nil)
    }
}

/// Keeps what arrived, on the channel's loop, and wakes waiters whose condition now holds.
private final class Collector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    /// The bytes so far, whether the connection is open, whether the server ended its side.
    typealias Condition = @Sendable (String, Bool, Bool) -> Bool

    // Touched only on the channel's event loop.
    private var bytes: [UInt8] = []
    private var open = true
    private var ended = false
    /// `readsText` false: the condition is given "" instead of the bytes so far (a long
    /// stream read in small pieces would otherwise be decoded again at every piece).
    private var waiters: [(id: Int, condition: Condition, readsText: Bool, promise: EventLoopPromise<Bool>)] = []
    private var nextWaiter = 0

    func text(on loop: any EventLoop) async -> String {
        (try? await loop.submit { String(decoding: self.bytes, as: UTF8.self) }.get()) ?? ""
    }

    func wait(
        on loop: any EventLoop, timeout: Duration, readsText: Bool = true, until condition: @escaping Condition
    ) async throws -> Bool {
        let promise = loop.makePromise(of: Bool.self)
        loop.execute {
            if condition(readsText ? String(decoding: self.bytes, as: UTF8.self) : "", self.open, self.ended) {
                promise.succeed(true)
                return
            }
            let id = self.nextWaiter
            self.nextWaiter += 1
            self.waiters.append((id, condition, readsText, promise))
            let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
            loop.scheduleTask(in: .nanoseconds(nanos)) {
                guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return }
                self.waiters.remove(at: index)
                promise.succeed(false)
            }
        }
        return try await promise.futureResult.get()
    }

    private func check() {
        var text: String?
        waiters.removeAll { waiter in
            if waiter.readsText, text == nil { text = String(decoding: bytes, as: UTF8.self) }
            guard waiter.condition(waiter.readsText ? text ?? "" : "", open, ended) else { return false }
            waiter.promise.succeed(true)
            return true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        bytes += unwrapInboundIn(data).readableBytesView
        check()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .inputClosed = event as? ChannelEvent {
            ended = true
            check()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        open = false
        check()
        context.fireChannelInactive()
    }
}
