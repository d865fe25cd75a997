import AiravataCore
import AiravataProtocol
import Logging
import NIOCore
import NIOWebSocket

/// One client's WebSocket after the upgrade: admission, inbound messages, heartbeat,
/// outbound delivery and the close handshake. Everything runs on the channel's loop.
final class WebSocketConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    private enum State {
        /// Waiting for authentication and admission; inbound messages and early
        /// deliveries wait here in order.
        case admitting(inbound: [ByteBuffer], outbound: [(frame: ByteBuffer, cursor: EventCursor?)])
        case open(Gateway.Admission)
        case closing(Gateway.Admission?)
        case closed
    }

    private let gateway: Gateway
    private let configuration: ServerConfiguration
    private let metrics: GatewayMetrics
    private let route: WebSocketRoute
    private let clientIP: String
    private var logger: Logger

    private var state = State.admitting(inbound: [], outbound: [])
    private var context: ChannelHandlerContext?
    /// The frame encoder's context: writing through it skips the encoder, because our
    /// frames (events above all) arrive already framed, one shared buffer per event.
    private var wire: ChannelHandlerContext?
    private var outlet: ConnectionOutlet?
    private var heartbeat: Heartbeat
    private var rateLimiter: RateLimiter
    private var rateLimitedInARow = 0
    private var pingTask: RepeatedTask?
    private var fragments: ByteBuffer?
    /// Mirrors the channel's writability, so the hot path need not ask the channel.
    private var writable = true
    /// Every event up to this cursor has reached the client (or precedes its start).
    private var highWater: EventCursor?
    /// A subscription change is being saved; later messages wait, in order, in `queued`.
    private var awaitingReply = false
    private var queued: [ByteBuffer] = []
    /// Live events overflowed the buffer kept while admission (and replay) ran.
    private var admissionOverflow = false

    /// Inbound messages buffered while admission or a subscription change is pending.
    private static let maxPendingInbound = 32
    /// Live events buffered while admission and replay run.
    private static let maxPendingOutbound = 50_000

    init(
        gateway: Gateway,
        configuration: ServerConfiguration,
        metrics: GatewayMetrics,
        route: WebSocketRoute,
        clientIP: String,
        logger: Logger
    ) {
        let now = NIODeadline.now().uptimeNanoseconds
        self.gateway = gateway
        self.configuration = configuration
        self.metrics = metrics
        self.route = route
        self.clientIP = clientIP
        self.logger = logger
        self.heartbeat = Heartbeat(intervalNanos: Self.nanos(configuration.pingIntervalSeconds), nowNanos: now)
        self.rateLimiter = RateLimiter(ratePerSecond: configuration.rateLimit, nowNanos: now)
    }

    private static func nanos(_ seconds: Double) -> UInt64 {
        UInt64(max(0.001, seconds) * 1e9)
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.wire = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        let outlet = ConnectionOutlet(handler: self, eventLoop: context.eventLoop)
        self.outlet = outlet
        let gateway = self.gateway
        let route = self.route
        let ip = self.clientIP
        let admission = context.eventLoop.makeFutureWithTask {
            await gateway.admit(
                token: route.token, ip: ip, pathSubscription: route.subscription, resume: route.resume, sink: outlet)
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        admission.whenSuccess { result in
            bound.value.admissionCompleted(result)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let admission: Gateway.Admission?
        switch state {
        case .open(let open): admission = open
        case .closing(let closing): admission = closing
        case .admitting, .closed: admission = nil
        }
        state = .closed
        wire = nil
        pingTask?.cancel()
        pingTask = nil
        outlet?.detach()
        if let admission {
            metrics.connectionClosed()
            let gateway = self.gateway
            // The limiter may be remote (Redis); releasing must not hold up the loop.
            context.eventLoop.makeFutureWithTask { await gateway.disconnect(admission) }
                .whenComplete { _ in }
        }
        context.fireChannelInactive()
    }

    private func admissionCompleted(_ result: Result<Gateway.Opening, ConnectionRefusal>) {
        guard case .admitting(let inbound, let outbound) = state else {
            // The client went away while we checked it: give its admission back.
            if case .success(let opening) = result {
                let gateway = self.gateway
                context?.eventLoop.makeFutureWithTask { await gateway.disconnect(opening.admission) }
                    .whenComplete { _ in }
            }
            return
        }
        switch result {
        case .failure(let refusal):
            metrics.connectionRefused(refusal)
            logger.info(
                "websocket refused",
                metadata: ["reason": "\(refusal.message)", "client.ip": "\(clientIP)"]
            )
            state = .closing(nil)
            send(gateway.errorMessage(refusal.message))
            startClose(code: CloseCodes.code(for: refusal), reason: refusal.message)
        case .success(let opening):
            let admission = opening.admission
            metrics.connectionOpened()
            logger[metadataKey: "connection.id"] = "\(admission.id)"
            logger[metadataKey: "user.id"] = "\(admission.principal.userID)"
            logger[metadataKey: "session.id"] = "\(admission.sessionID)"
            logger.debug(
                "websocket admitted",
                metadata: [
                    "subscription": "\(admission.subscription?.description ?? "none")",
                    "resumed": "\(route.resume != nil)", "greeting.frames": "\(opening.greeting.count)",
                ])
            state = .open(admission)
            highWater = opening.highWater
            startHeartbeat()
            for frame in opening.greeting { writeRaw(frame) }
            if admissionOverflow {
                metrics.slowConsumer()
                startClose(code: CloseCodes.slowConsumer, reason: "Slow consumer: outbound queue overflow")
                return
            }
            for (frame, cursor) in outbound { deliver(frame, cursor: cursor) }
            queued = inbound
            processQueued()
        }
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        heartbeat.sawLife(nowNanos: NIODeadline.now().uptimeNanoseconds)
        switch frame.opcode {
        case .text, .binary:
            if frame.fin {
                fragments = nil
                receive(frame.unmaskedData)
            } else {
                fragments = frame.unmaskedData
            }
        case .continuation:
            guard var buffer = fragments else {
                startClose(code: .protocolError, reason: "Unexpected continuation frame")
                return
            }
            var payload = frame.unmaskedData
            guard buffer.readableBytes + payload.readableBytes <= configuration.maxFrameSize else {
                fragments = nil
                metrics.oversizedMessage()
                startClose(code: CloseCodes.messageTooLarge, reason: "Message too large")
                return
            }
            buffer.writeBuffer(&payload)
            if frame.fin {
                fragments = nil
                receive(buffer)
            } else {
                fragments = buffer
            }
        case .ping:
            guard frame.fin else { return }
            writeRaw(WebSocketWireFrame.encode(opcode: .pong, payload: frame.unmaskedData))
        case .pong:
            break
        case .connectionClose:
            receivedClose(frame)
        default:
            startClose(code: .protocolError, reason: "Unknown opcode")
        }
    }

    private func receive(_ message: ByteBuffer) {
        switch state {
        case .admitting(var inbound, let outbound):
            guard inbound.count < Self.maxPendingInbound else { return }
            inbound.append(message)
            state = .admitting(inbound: inbound, outbound: outbound)
        case .open:
            if awaitingReply {
                guard queued.count < Self.maxPendingInbound else {
                    send(gateway.errorMessage("Too many messages in flight; wait for the replies"))
                    return
                }
                queued.append(message)
            } else {
                handleMessage(message)
            }
        case .closing, .closed:
            break
        }
    }

    /// Handles waiting messages in order until one needs an asynchronous reply.
    private func processQueued() {
        while !awaitingReply, !queued.isEmpty {
            handleMessage(queued.removeFirst())
        }
    }

    /// Runs a subscription change (it saves the session, maybe in Redis) and replies on
    /// this loop; messages that arrive meanwhile wait so that replies keep their order.
    private func reply(_ work: @escaping @Sendable () async -> Envelope) {
        guard let context else { return }
        awaitingReply = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithTask { await work() }
            .whenSuccess { envelope in
                let handler = bound.value
                handler.awaitingReply = false
                handler.sendIfOpen(envelope)
                handler.processQueued()
            }
    }

    private func handleMessage(_ message: ByteBuffer) {
        guard case .open(let admission) = state else { return }
        metrics.messageReceived()
        guard rateLimiter.allow(nowNanos: NIODeadline.now().uptimeNanoseconds) else {
            rateLimitedInARow += 1
            metrics.rateLimited()
            // Persistent flooding is not a client bug any more: cut it off.
            if rateLimitedInARow > max(100, Int(configuration.rateLimit * 10)) {
                startClose(code: CloseCodes.rateLimitAbuse, reason: "Rate limit exceeded")
            } else {
                send(gateway.errorMessage("Rate limit exceeded"))
            }
            return
        }
        rateLimitedInARow = 0
        let parsed: Result<ClientMessage, ClientMessage.ParseError> =
            message.readableBytesView.withContiguousStorageIfAvailable {
                bytes in
                Result { () throws(ClientMessage.ParseError) -> ClientMessage in try ClientMessage(parsing: bytes) }
            }
            ?? Result { () throws(ClientMessage.ParseError) -> ClientMessage in
                try Array(message.readableBytesView).withUnsafeBufferPointer { bytes throws(ClientMessage.ParseError) in
                    try ClientMessage(parsing: bytes)
                }
            }
        switch parsed {
        case .failure(let error):
            send(gateway.errorMessage(error.message))
        case .success(.ping):
            send(gateway.control(.pong, prefix: "pong"))
        case .success(.pong):
            break
        case .success(.subscribe(let request)):
            let gateway = self.gateway
            reply { await gateway.subscribe(request, for: admission) }
        case .success(.unsubscribe(let request)):
            let gateway = self.gateway
            reply { await gateway.unsubscribe(request, for: admission) }
        case .success(.statusRequest):
            // Cluster figures come from Redis: answer when they arrive, on this loop.
            guard let context else { return }
            let gateway = self.gateway
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask { await gateway.statusMessage() }
                .whenSuccess { bound.value.sendIfOpen($0) }
        }
    }

    // MARK: Outbound

    /// Called by the gateway, on this loop, with an encoded event shared by all recipients.
    func deliver(_ frame: ByteBuffer, cursor: EventCursor?) {
        switch state {
        case .admitting(let inbound, var outbound):
            guard outbound.count < Self.maxPendingOutbound else {
                admissionOverflow = true
                return
            }
            outbound.append((frame, cursor))
            state = .admitting(inbound: inbound, outbound: outbound)
        case .open:
            guard let context else { return }
            if let cursor {
                // At most once, in order: replay and live delivery meet here.
                if let highWater, cursor <= highWater { return }
                highWater = cursor
            }
            if !writable,
                let buffered = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes),
                buffered > configuration.maxOutboundBytes
            {
                metrics.slowConsumer()
                logger.info("closing slow consumer", metadata: ["buffered.bytes": "\(buffered)"])
                startClose(code: CloseCodes.slowConsumer, reason: "Slow consumer: outbound queue overflow")
                return
            }
            writeRaw(frame)
        case .closing, .closed:
            break
        }
    }

    private func sendIfOpen(_ envelope: Envelope) {
        guard case .open = state else { return }
        send(envelope)
    }

    private func send(_ envelope: Envelope) {
        writeRaw(gateway.frame(envelope))
    }

    /// Writes bytes that are already a complete WebSocket frame.
    private func writeRaw(_ bytes: ByteBuffer) {
        guard let target = wire ?? context else { return }
        target.writeAndFlush(NIOAny(bytes), promise: nil)
    }

    // MARK: Heartbeat

    private func startHeartbeat() {
        guard let context else { return }
        let interval = TimeAmount.nanoseconds(Int64(Self.nanos(configuration.pingIntervalSeconds)))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.heartbeatTick()
        }
    }

    private func heartbeatTick() {
        guard case .open = state else { return }
        switch heartbeat.tick(nowNanos: NIODeadline.now().uptimeNanoseconds) {
        case .sendPing:
            send(gateway.control(.ping, prefix: "ping"))
            writeRaw(WebSocketWireFrame.encode(opcode: .ping, payload: EmptyCollection<UInt8>()))
        case .close:
            metrics.pingTimeout()
            logger.info(
                "closing silent client", metadata: ["after.seconds": "\(2 * configuration.pingIntervalSeconds)"])
            startClose(code: CloseCodes.pingTimeout, reason: "Ping timeout")
            // A silent peer will not answer the close frame either.
            context?.close(promise: nil)
        }
    }

    // MARK: Closing

    /// Sends a close frame and waits (bounded) for the client's reply.
    func startClose(code: WebSocketErrorCode, reason: String) {
        guard let context else { return }
        switch state {
        case .open(let admission): state = .closing(admission)
        case .admitting: state = .closing(nil)
        case .closing: break
        case .closed: return
        }
        pingTask?.cancel()
        pingTask = nil
        let channel = context.channel
        let target = wire ?? context
        target.writeAndFlush(NIOAny(WebSocketWireFrame.close(code: code, reason: reason)))
            .whenFailure { _ in channel.close(promise: nil) }
        let timeout = TimeAmount.nanoseconds(Int64(Self.nanos(configuration.closeTimeoutSeconds)))
        context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    private func receivedClose(_ frame: WebSocketFrame) {
        guard let context else { return }
        switch state {
        case .closing, .closed:
            context.close(promise: nil)
        case .open, .admitting:
            if case .open(let admission) = state { state = .closing(admission) } else { state = .closing(nil) }
            // Echo the client's code, as RFC 6455 asks, then hang up.
            var data = frame.unmaskedData
            let code = data.readWebSocketErrorCode() ?? .normalClosure
            let channel = context.channel
            (wire ?? context).writeAndFlush(NIOAny(WebSocketWireFrame.close(code: code, reason: "")))
                .whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let protocolError = error as? NIOWebSocketError {
            // WebSocketProtocolErrorHandler, ahead of us, already sent the close frame
            // (1009 for an oversized frame) and closes once it is written.
            if case .invalidFrameLength = protocolError { metrics.oversizedMessage() }
            logger.info("websocket protocol error", metadata: ["error": "\(protocolError)"])
            if case .open(let admission) = state { state = .closing(admission) }
            return
        }
        logger.debug("websocket error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
