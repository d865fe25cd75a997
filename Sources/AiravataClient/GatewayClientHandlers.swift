import AiravataProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// Sends the upgrade request; reports a refused upgrade (an HTTP answer instead of 101).
final class UpgradeRequester: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let host: String
    private let port: Int
    private let target: String
    private let closed: ClosedReport

    init(host: String, port: Int, target: String, closed: ClosedReport) {
        self.host = host
        self.port = port
        self.target = target
        self.closed = closed
    }

    func channelActive(context: ChannelHandlerContext) {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
        head.headers.add(name: "host", value: "\(host):\(port)")
        head.headers.add(name: "content-length", value: "0")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            closed.succeed(
                GatewayClient.Closed(code: nil, reason: "upgrade refused: HTTP \(head.status.code)", admitted: false))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closed.succeed(GatewayClient.Closed(code: nil, reason: "\(error)", admitted: false))
        context.close(promise: nil)
    }
}

/// The WebSocket after the upgrade: answers pings, hands messages to the client and
/// reports how the connection closed.
final class ClientFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let client: GatewayClient
    private let closed: ClosedReport
    private var admitted = false
    private var fragments: ByteBuffer?

    init(client: GatewayClient, closed: ClosedReport) {
        self.client = client
        self.closed = closed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            if frame.fin { text(context, frame.unmaskedData) } else { fragments = frame.unmaskedData }
        case .continuation:
            guard var buffer = fragments else { return }
            var more = frame.unmaskedData
            buffer.writeBuffer(&more)
            if frame.fin {
                fragments = nil
                text(context, buffer)
            } else {
                fragments = buffer
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self)
            let reason = payload.readString(length: payload.readableBytes) ?? ""
            closed.succeed(GatewayClient.Closed(code: code, reason: reason, admitted: admitted))
            var echo = context.channel.allocator.buffer(capacity: 2)
            echo.writeInteger(code ?? 1000)
            let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    private func text(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        guard let value = try? JSONValue(parsing: Array(buffer.readableBytesView)),
            let envelope = try? Envelope(decoding: value)
        else { return }
        if envelope.type == MessageType.ping.rawValue {
            GatewayClient.send(.object(["type": .string("pong")]), on: context.channel)
            return
        }
        if !admitted, envelope.type == MessageType.systemStatus.rawValue,
            envelope.data?["action"]?.stringValue == "connected"
        {
            admitted = true
            client.admitted(context.channel, envelope)
            return
        }
        if !admitted { client.refusedBeforeAdmission(envelope) }
        client.received(envelope)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed.succeed(GatewayClient.Closed(code: nil, reason: "connection lost", admitted: admitted))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closed.succeed(GatewayClient.Closed(code: nil, reason: "\(error)", admitted: admitted))
        context.close(promise: nil)
    }
}

/// Completes the connection's outcome once, whichever of the handlers notices the end first.
final class ClosedReport: Sendable {
    private let promise: EventLoopPromise<GatewayClient.Closed>
    private let done = Atomic<Bool>(false)

    init(_ promise: EventLoopPromise<GatewayClient.Closed>) {
        self.promise = promise
    }

    var futureResult: EventLoopFuture<GatewayClient.Closed> { promise.futureResult }

    func succeed(_ closed: GatewayClient.Closed) {
        guard done.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        promise.succeed(closed)
    }

    func fail(_ error: any Error) {
        guard done.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        promise.fail(error)
    }
}

/// Ends a connection on which nothing arrived for the idle timeout.
final class IdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    private let closed: ClosedReport

    init(closed: ClosedReport) {
        self.closed = closed
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            closed.succeed(GatewayClient.Closed(code: nil, reason: "no data from the server", admitted: false))
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
