public import AiravataProtocol
public import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A deliberately low-level WebSocket client for tests: it speaks the wire format by hand,
/// so a test can stay silent, skip answering pings, or send frames no library would.
public final class RawWebSocket: Sendable {
    public enum Event: Sendable, Equatable {
        case text(String)
        case binary([UInt8])
        case ping([UInt8])
        case pong([UInt8])
        case close(code: UInt16?, reason: String)
        case disconnected
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    public let channel: any Channel
    private let inbox: Inbox

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    /// Opens a WebSocket to `path`; throws unless the server answers 101.
    /// With `answerPings`, ping frames are answered with pongs (as browsers do).
    /// `receiveBufferBytes` shrinks the socket's receive buffer (a client that reads
    /// little, see `pauseReading`, then fills up after that many bytes).
    public static func connect(
        port: Int,
        path: String,
        headers: [(String, String)] = [],
        answerPings: Bool = true,
        tls: Bool = false,
        plainRequestsFirst: [String] = [],
        receiveBufferBytes: Int? = nil
    ) async throws -> RawWebSocket {
        let inbox = Inbox()
        // Tests use self-signed certificates: encryption without verification.
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.certificateVerification = .none
        let tlsContext = tls ? try NIOSSLContext(configuration: tlsConfiguration) : nil
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let receiveBufferBytes {
            // Before connecting, so that the window the server sees is small from the start.
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferBytes))
        }
        let channel =
            try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tlsContext, serverHostname: nil)
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        FrameReader(inbox: inbox, answerPings: answerPings, skipResponses: plainRequestsFirst.count)
                    )
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        // Plain requests on the same connection first, as an HTTP client with a keep-alive pool does.
        var request = plainRequestsFirst.map { "GET \($0) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n" }.joined()
        request += "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request))
        let status = try await inbox.handshake(timeout: .seconds(10), eventLoop: channel.eventLoop)
        guard status.hasPrefix("HTTP/1.1 101") else {
            channel.close(promise: nil)
            throw Failure(description: "expected 101 Switching Protocols, got: \(status)")
        }
        return RawWebSocket(channel: channel, inbox: inbox)
    }

    public func send(_ text: String) async throws {
        try await sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    public func send(_ value: JSONValue) async throws {
        try await send(value.jsonString)
    }

    /// Sends one frame: masked with no reserved bits, as a client must, unless a test asks
    /// for an unmasked frame or for reserved bits (`rsv` holds them in place: 0x40, 0x20, 0x10).
    public func sendFrame(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0
    ) async throws {
        try await sendRaw(Self.frame(opcode: opcode, payload: payload, fin: fin, masked: masked, rsv: rsv))
    }

    /// The bytes of one client frame, for tests that batch many frames into one write.
    public static func frame(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0
    ) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger((fin ? 0x80 : 0) | (rsv & 0x70) | opcode)
        let maskBit: UInt8 = masked ? 0x80 : 0
        if payload.count < 126 {
            buffer.writeInteger(maskBit | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(payload.count))
        }
        guard masked else {
            buffer.writeBytes(payload)
            return buffer
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        buffer.writeBytes(mask)
        buffer.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        return buffer
    }

    /// Writes bytes as they are.
    public func sendRaw(_ bytes: ByteBuffer) async throws {
        try await channel.writeAndFlush(bytes)
    }

    /// Stops reading from the socket, as a client that never reads: what the server sends
    /// piles up in the kernel's buffers and then in the server.
    public func pauseReading() async throws {
        try await channel.setOption(.autoRead, value: false).get()
    }

    public func resumeReading() async throws {
        try await channel.setOption(.autoRead, value: true).get()
    }

    public func sendClose(code: UInt16 = 1000, reason: [UInt8] = []) async throws {
        var payload: [UInt8] = []
        payload.append(UInt8(code >> 8))
        payload.append(UInt8(code & 0xFF))
        try await sendFrame(opcode: 0x8, payload: payload + reason)
    }

    /// The next event, whatever it is.
    public func next(timeout: Duration = .seconds(10)) async throws -> Event {
        try await inbox.next(timeout: timeout, eventLoop: channel.eventLoop)
    }

    /// The next JSON text message, skipping control frames. Fails on a close.
    public func nextMessage(timeout: Duration = .seconds(10)) async throws -> JSONValue {
        while true {
            switch try await next(timeout: timeout) {
            case .text(let text):
                return try JSONValue(parsing: text)
            case .ping, .pong:
                continue
            case let other:
                throw Failure(description: "expected a message, got \(other)")
            }
        }
    }

    /// The next message whose `type` is `type`, skipping others (e.g. heartbeats).
    public func nextMessage(ofType type: String, timeout: Duration = .seconds(10)) async throws -> JSONValue {
        while true {
            let message = try await nextMessage(timeout: timeout)
            if message["type"]?.stringValue == type { return message }
        }
    }

    /// The text of the next message whose `type` is `type`, as the server wrote it.
    public func nextText(ofType type: String, timeout: Duration = .seconds(10)) async throws -> String {
        while true {
            switch try await next(timeout: timeout) {
            case .text(let text):
                if try JSONValue(parsing: text)["type"]?.stringValue == type { return text }
            case .ping, .pong:
                continue
            case let other:
                throw Failure(description: "expected a message, got \(other)")
            }
        }
    }

    /// Skips messages until the server closes; returns the close code and reason.
    public func expectClose(timeout: Duration = .seconds(10)) async throws -> (code: UInt16?, reason: String) {
        while true {
            switch try await next(timeout: timeout) {
            case .close(let code, let reason): return (code, reason)
            case .disconnected: throw Failure(description: "connection dropped without a close frame")
            default: continue
            }
        }
    }

    /// True if nothing but heartbeats arrives within `window`.
    public func expectSilence(for window: Duration) async throws -> JSONValue? {
        do {
            while true {
                switch try await next(timeout: window) {
                case .text(let text): return try JSONValue(parsing: text)
                case .ping, .pong: continue
                case let other: throw Failure(description: "expected silence, got \(other)")
                }
            }
        } catch is Inbox.Timeout {
            return nil
        }
    }

    public func close() {
        channel.close(promise: nil)
    }
}

/// Events from the reader, waited for with a timeout.
public final class Inbox: Sendable {
    public struct Timeout: Error, CustomStringConvertible {
        public let description = "timed out waiting for the server"
    }

    private struct State {
        var status: String?
        var statusWaiter: CheckedContinuation<String, any Error>?
        var events: [RawWebSocket.Event] = []
        var head = 0
        var waiter: CheckedContinuation<RawWebSocket.Event, any Error>?
        var waiterID = 0
    }

    private let state = Mutex(State())

    func deliverStatus(_ status: String) {
        let waiter = state.withLock { state -> CheckedContinuation<String, any Error>? in
            state.status = status
            defer { state.statusWaiter = nil }
            return state.statusWaiter
        }
        waiter?.resume(returning: status)
    }

    func push(_ event: RawWebSocket.Event) {
        let waiter = state.withLock { state -> CheckedContinuation<RawWebSocket.Event, any Error>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.events.append(event)
            return nil
        }
        waiter?.resume(returning: event)
        if event == .disconnected {
            let statusWaiter = state.withLock { state in
                defer { state.statusWaiter = nil }
                return state.statusWaiter
            }
            statusWaiter?.resume(throwing: RawWebSocket.Failure(description: "connection closed during handshake"))
        }
    }

    func handshake(timeout: Duration, eventLoop: any EventLoop) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> String? in
                if let status = state.status { return status }
                state.statusWaiter = continuation
                return nil
            }
            if let ready {
                continuation.resume(returning: ready)
                return
            }
            eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)) {
                let waiter = self.state.withLock { state in
                    defer { state.statusWaiter = nil }
                    return state.statusWaiter
                }
                waiter?.resume(throwing: Timeout())
            }
        }
    }

    func next(timeout: Duration, eventLoop: any EventLoop) async throws -> RawWebSocket.Event {
        try await withCheckedThrowingContinuation { continuation in
            let (ready, id) = state.withLock { state -> (RawWebSocket.Event?, Int) in
                if state.head < state.events.count {
                    let event = state.events[state.head]
                    state.head += 1
                    return (event, 0)
                }
                state.waiter = continuation
                state.waiterID += 1
                return (nil, state.waiterID)
            }
            if let ready {
                continuation.resume(returning: ready)
                return
            }
            let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
            eventLoop.scheduleTask(in: .nanoseconds(nanos)) {
                let waiter = self.state.withLock { state -> CheckedContinuation<RawWebSocket.Event, any Error>? in
                    guard state.waiterID == id, let waiter = state.waiter else { return nil }
                    state.waiter = nil
                    return waiter
                }
                waiter?.resume(throwing: Timeout())
            }
        }
    }
}

/// Parses the HTTP handshake answer, then server frames (unmasked, possibly fragmented).
private final class FrameReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let inbox: Inbox
    private let answerPings: Bool
    private var buffer = ByteBuffer()
    private var handshakeDone = false
    private var fragments: [UInt8]?
    private var fragmentOpcode: UInt8 = 0

    /// Complete HTTP responses to plain requests, read and dropped before the handshake's.
    private var skipResponses: Int

    init(inbox: Inbox, answerPings: Bool, skipResponses: Int = 0) {
        self.inbox = inbox
        self.answerPings = answerPings
        self.skipResponses = skipResponses
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        while skipResponses > 0 {
            let view = buffer.readableBytesView
            guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let headerLength = end.upperBound - view.startIndex
            let header = String(decoding: view.prefix(headerLength), as: UTF8.self).lowercased()
            let length =
                header.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).filter { $0 != " " }) } ?? 0
            guard buffer.readableBytes >= headerLength + length else { return }
            buffer.moveReaderIndex(forwardBy: headerLength + length)
            skipResponses -= 1
        }
        if !handshakeDone {
            let view = buffer.readableBytesView
            guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let length = end.upperBound - view.startIndex
            let header = buffer.readString(length: length) ?? ""
            handshakeDone = true
            inbox.deliverStatus(String(header.prefix { $0 != "\r" }))
        }
        while let (fin, opcode, payload) = readFrame() {
            switch opcode {
            case 0x0:
                fragments?.append(contentsOf: payload)
                if fin, let whole = fragments {
                    fragments = nil
                    emit(opcode: fragmentOpcode, payload: whole, context: context)
                }
            case 0x1, 0x2:
                if fin {
                    emit(opcode: opcode, payload: payload, context: context)
                } else {
                    fragments = payload
                    fragmentOpcode = opcode
                }
            default:
                emit(opcode: opcode, payload: payload, context: context)
            }
        }
    }

    private func emit(opcode: UInt8, payload: [UInt8], context: ChannelHandlerContext) {
        switch opcode {
        case 0x1: inbox.push(.text(String(decoding: payload, as: UTF8.self)))
        case 0x2: inbox.push(.binary(payload))
        case 0x8:
            let code = payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
            let reason = payload.count > 2 ? String(decoding: payload[2...], as: UTF8.self) : ""
            inbox.push(.close(code: code, reason: reason))
        case 0x9:
            inbox.push(.ping(payload))
            if answerPings {
                var frame = ByteBuffer()
                frame.writeInteger(UInt8(0x8A))
                frame.writeInteger(UInt8(0x80 | payload.count))
                frame.writeBytes([0, 0, 0, 0])
                frame.writeBytes(payload)
                context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            }
        case 0xA: inbox.push(.pong(payload))
        default: break
        }
    }

    private func readFrame() -> (Bool, UInt8, [UInt8])? {
        let start = buffer.readerIndex
        guard let first = buffer.readInteger(as: UInt8.self), let second = buffer.readInteger(as: UInt8.self) else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let extended = buffer.readInteger(as: UInt16.self) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            length = Int(extended)
        } else if length == 127 {
            guard let extended = buffer.readInteger(as: UInt64.self) else {
                buffer.moveReaderIndex(to: start)
                return nil
            }
            length = Int(extended)
        }
        guard let payload = buffer.readBytes(length: length) else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        buffer.discardReadBytes()
        return (first & 0x80 != 0, first & 0x0F, payload)
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.push(.disconnected)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
