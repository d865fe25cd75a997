import AiravataCore
import AiravataProtocol
import Logging
import NIOCore
import NIOWebSocket

/// One client's WebSocket after the upgrade: admission, inbound messages, heartbeat and
/// outbound delivery. The RFC 6455 rules and the close handshake are decided by
/// `WebSocketStateMachine`; this handler performs its actions. Everything runs on the
/// channel's loop.
final class WebSocketConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    /// Where admission stands; the wire's state is `machine`'s.
    private enum Admission {
        /// Waiting for authentication and admission; inbound messages and early
        /// deliveries wait in `pendingInbound` and `pendingOutbound`, in order.
        case pending
        case admitted(Gateway.Admission)
        /// Refused, or given back when the connection closed.
        case none
    }

    private let gateway: Gateway
    private let metrics: GatewayMetrics
    private let statistics: StatisticsCache
    /// Needed until admission starts; dropped then, with the token it carries (an idle
    /// connection should not hold a copy of its JWT for its whole life).
    private var route: WebSocketRoute?
    private let resuming: Bool
    private let clientIP: String
    /// The node's logger, shared: connection ids are added to each message, not stored in a
    /// per-connection copy (its metadata dictionary cost every idle connection ~700 bytes).
    private let logger: Logger

    private var admission = Admission.pending
    /// What waits for admission. Not in `Admission.pending`'s payload: an array there is
    /// shared with the copy a `switch` binds, so each early delivery copied all those before
    /// it (a resume replaying thousands of events took seconds of the loop).
    private var pendingInbound: [ByteBuffer] = []
    private var pendingOutbound: [(frame: ByteBuffer, cursor: EventCursor?)] = []
    private var machine: WebSocketStateMachine
    private var context: ChannelHandlerContext?
    private var outlet: ConnectionOutlet?
    /// Its event loop's heartbeat ticker while the connection is admitted and open.
    private var ticker: HeartbeatTicker?
    /// Its event loop's flusher: deliveries are written at once and flushed in a batch.
    private var flusher: LoopFlusher?
    /// Deliveries written and not flushed yet; the flusher will flush them.
    private var flushDue = false
    private var closeTimer: Scheduled<Void>?
    /// Mirrors the channel's writability, so the hot path need not ask the channel.
    private var writable = true
    /// Every event up to this cursor has reached the client (or precedes its start).
    private var highWater: EventCursor?
    /// A subscription change is being saved; later messages wait, in order, in `queued`.
    private var awaitingReply = false
    private var queued: [ByteBuffer] = []
    /// Live events overflowed the buffer kept while admission (and replay) ran.
    private var admissionOverflow = false
    /// The handshake's 101 answer, held until the first thing written after it (the greeting,
    /// or a refusal), so that both leave in one write: one segment for the client to read
    /// and one system call for us instead of two each.
    private var handshakeAnswer: ByteBuffer?
    /// Set at the first delivery once NIO holds none of the connection's bytes: from then on
    /// its frames go to the socket directly, NIO taking only what the socket cannot take yet.
    /// Idle connections never get one. Never with TLS.
    private var socketWriter: SocketWriter?
    /// False with TLS, with `--direct-writes false`, and once the socket was not proven.
    private var mayWriteSocket: Bool
    /// With `--tcp-nodelay auto`, given to the socket writer: when the connection counts as
    /// streamed to.
    private let streamThresholds: StreamDetector.Thresholds?

    /// Inbound messages buffered while admission or a subscription change is pending.
    private static let maxPendingInbound = 32
    /// Live events buffered while admission and replay run.
    private static let maxPendingOutbound = 50_000

    init(
        gateway: Gateway,
        configuration: ServerConfiguration,
        metrics: GatewayMetrics,
        statistics: StatisticsCache,
        route: WebSocketRoute,
        handshakeAnswer: ByteBuffer,
        clientIP: String,
        logger: Logger
    ) {
        self.handshakeAnswer = handshakeAnswer
        self.gateway = gateway
        self.statistics = statistics
        self.metrics = metrics
        self.route = route
        self.resuming = route.resume != nil
        self.clientIP = clientIP
        self.logger = logger
        self.mayWriteSocket = configuration.directWrites && configuration.tls == nil
        self.streamThresholds = configuration.tcpNoDelay == .auto ? configuration.streamThresholds : nil
        self.machine = WebSocketStateMachine(
            configuration: .init(configuration), nowNanos: NIODeadline.now().uptimeNanoseconds)
    }

    private static var nowNanos: UInt64 { NIODeadline.now().uptimeNanoseconds }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let outlet = ConnectionOutlet(handler: self, eventLoop: context.eventLoop)
        self.outlet = outlet
        let gateway = self.gateway
        guard let route = self.route else { return }
        self.route = nil
        let ip = self.clientIP
        let admission = context.eventLoop.makeFutureWithLoopTask {
            await gateway.admit(
                token: route.token, ip: ip, pathSubscription: route.subscription, resume: route.resume, sink: outlet)
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        admission.whenSuccess { result in
            bound.value.admissionCompleted(result)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        machine.channelClosed()
        socketWriter = nil
        mayWriteSocket = false
        stopHeartbeat()
        closeTimer?.cancel()
        closeTimer = nil
        outlet?.detach()
        if case .admitted(let admitted) = admission {
            metrics.connectionClosed()
            let gateway = self.gateway
            // The limiter may be remote (Redis); releasing must not hold up the loop. Run on
            // it, as admission is: a plain task woke a pool thread at each step of every close.
            context.eventLoop.makeFutureWithLoopTask { await gateway.disconnect(admitted) }
                .whenComplete { _ in }
        }
        admission = .none
        (pendingInbound, pendingOutbound) = ([], [])
        context.fireChannelInactive()
    }

    private func admissionCompleted(_ result: Result<Gateway.Opening, ConnectionRefusal>) {
        let (inbound, outbound) = (pendingInbound, pendingOutbound)
        (pendingInbound, pendingOutbound) = ([], [])
        guard case .pending = admission, machine.isOpen else {
            // The client went away (or was closed) while we checked it: give its admission back.
            if case .success(let opening) = result {
                let gateway = self.gateway
                context?.eventLoop.makeFutureWithLoopTask { await gateway.disconnect(opening.admission) }
                    .whenComplete { _ in }
            }
            admission = .none
            return
        }
        switch result {
        case .failure(let refusal):
            metrics.connectionRefused(refusal)
            logger.info(
                "websocket refused",
                metadata: ["reason": "\(refusal.message)", "client.ip": "\(clientIP)"]
            )
            admission = .none
            send(gateway.errorMessage(refusal.message))
            startClose(code: CloseCodes.code(for: refusal), reason: refusal.message)
        case .success(let opening):
            let admitted = opening.admission
            // Authenticated and admitted: no longer one of the node's pending connections.
            context?.triggerUserOutboundEvent(ConnectionSettled(), promise: nil)
            metrics.connectionOpened()
            logger.debug(
                "websocket admitted",
                metadata: [
                    "connection.id": "\(admitted.id)", "user.id": "\(admitted.principal.userID)",
                    "session.id": "\(admitted.sessionID)", "client.ip": "\(clientIP)",
                    "subscription": "\(admitted.subscription?.description ?? "none")",
                    "resumed": "\(resuming)", "greeting.frames": "\(opening.greeting.count)",
                ])
            admission = .admitted(admitted)
            highWater = opening.highWater
            startHeartbeat()
            for (index, frame) in opening.greeting.enumerated() {
                write(frame, flush: index == opening.greeting.count - 1)
            }
            if admissionOverflow {
                perform(
                    machine.close(
                        code: CloseCodes.slowConsumer, reason: "Slow consumer: outbound queue overflow",
                        cause: .slowConsumer, closeWhenWritten: false, nowNanos: Self.nowNanos))
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
        let now = Self.nowNanos
        // A pong answers our heartbeat (browsers send it by themselves): not the client talking.
        if frame.opcode != .pong { socketWriter?.heard(at: now) }
        perform(machine.received(frame, nowNanos: now))
    }

    /// Carries out what the state machine decided.
    private func perform(_ action: WebSocketStateMachine.Action) {
        switch action {
        case .none:
            break
        case .receivedMessage(let message):
            receive(message)
        case .handle(let message):
            handleMessage(message)
        case .writePong(let payload):
            write(WebSocketWireFrame.encode(opcode: .pong, payload: payload))
        case .replyRateLimited:
            metrics.rateLimited()
            // Before admission the client has no greeting yet; the excess is just dropped.
            guard case .admitted = admission else { return }
            send(gateway.errorMessage("Rate limit exceeded"))
        case .sendPings:
            send(gateway.control(.ping, prefix: "ping"))
            write(WebSocketWireFrame.encode(opcode: .ping, payload: EmptyCollection<UInt8>()))
        case .sendClose(let close):
            sendClose(close)
        case .closeChannel:
            context?.close(promise: nil)
        }
    }

    private func receive(_ message: ByteBuffer) {
        switch admission {
        case .pending:
            guard pendingInbound.count < Self.maxPendingInbound else {
                // Dropped unread, but charged: a flood during admission ends in the close.
                let verdict = machine.charge(nowNanos: Self.nowNanos)
                if case .sendClose = verdict { perform(verdict) }
                return
            }
            pendingInbound.append(message)
        case .admitted:
            if awaitingReply {
                guard queued.count < Self.maxPendingInbound else {
                    switch machine.charge(nowNanos: Self.nowNanos) {
                    case .none: send(gateway.errorMessage("Too many messages in flight; wait for the replies"))
                    case let verdict: perform(verdict)
                    }
                    return
                }
                queued.append(message)
            } else {
                process(message)
            }
        case .none:
            break
        }
    }

    private func process(_ message: ByteBuffer) {
        metrics.messageReceived()
        perform(machine.process(message, nowNanos: Self.nowNanos))
    }

    /// Handles waiting messages in order until one needs an asynchronous reply.
    private func processQueued() {
        while !awaitingReply, !queued.isEmpty, machine.isOpen {
            process(queued.removeFirst())
        }
    }

    /// Runs a subscription change (it saves the session, maybe in Redis) and replies on
    /// this loop; messages that arrive meanwhile wait so that replies keep their order.
    private func reply(_ work: @escaping @Sendable () async -> Envelope) {
        guard let context else { return }
        awaitingReply = true
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.makeFutureWithLoopTask { await work() }
            .whenSuccess { envelope in
                let handler = bound.value
                handler.awaitingReply = false
                handler.send(envelope)
                handler.processQueued()
            }
    }

    /// A message within the rate limit: parse it and act on it.
    private func handleMessage(_ message: ByteBuffer) {
        guard case .admitted(let admitted) = admission else { return }
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
            reply { await gateway.subscribe(request, for: admitted) }
        case .success(.unsubscribe(let request)):
            let gateway = self.gateway
            reply { await gateway.unsubscribe(request, for: admitted) }
        case .success(.statusRequest):
            // Cluster figures come from Redis (through the node's one-second snapshot): answer
            // when they arrive, on this loop.
            guard let context else { return }
            let gateway = self.gateway
            let statistics = self.statistics
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask { gateway.statusMessage(await statistics.current()) }
                .whenSuccess { bound.value.send($0) }
        }
    }

    // MARK: Outbound

    /// Called by the gateway, on this loop, with an encoded event shared by all recipients.
    func deliver(_ frame: ByteBuffer, cursor: EventCursor?) {
        switch admission {
        case .pending:
            guard pendingOutbound.count < Self.maxPendingOutbound else {
                admissionOverflow = true
                return
            }
            pendingOutbound.append((frame, cursor))
        case .admitted:
            if let cursor {
                // At most once, in order: replay and live delivery meet here.
                if let highWater, cursor <= highWater { return }
                highWater = cursor
            }
            write(frame, flush: flusher == nil)
        case .none:
            break
        }
    }

    private func send(_ envelope: Envelope) {
        write(gateway.frame(envelope))
    }

    /// Writes bytes that are already a complete WebSocket frame, if the state machine lets
    /// them through: nothing after our close frame, nothing past the outbound budget.
    /// - Parameter flush: false for live deliveries, which the loop's flusher flushes
    ///   together once the deliveries already queued on the loop are written.
    private func write(_ bytes: ByteBuffer, flush: Bool = true) {
        guard let context else { return }
        // Below the high watermark the queue is small: skip asking the channel.
        let buffered =
            (socketWriter?.unflushedBytes ?? 0)
            + (writable ? 0 : (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0)
        switch machine.outbound(bytes: bytes.readableBytes, bufferedBytes: buffered, nowNanos: Self.nowNanos) {
        case .write:
            if socketWriter == nil, mayWriteSocket, !flush { claimSocket(context) }
            writeHandshakeAnswer()
            if let socketWriter {
                socketWriter.write(bytes, nowNanos: flusher?.nowNanos() ?? Self.nowNanos)
                if flush {
                    socketWriter.flush(context, from: .pipeline)
                } else {
                    flushSoon()
                }
            } else if flush {
                context.writeAndFlush(NIOAny(bytes), promise: nil)
            } else {
                context.write(NIOAny(bytes), promise: nil)
                flushSoon()
            }
        case .drop:
            break
        case .sendClose(let close):
            sendClose(close)
        }
    }

    /// Has the loop's flusher flush this connection once the deliveries queued so far are written.
    private func flushSoon() {
        guard !flushDue, let flusher else { return }
        flushDue = true
        flusher.flushSoon(self)
    }

    /// Gives the connection a `SocketWriter` if it can have one now (at a delivery, after the
    /// greeting: the 101 answer is out and NIO usually holds nothing).
    private func claimSocket(_ context: ChannelHandlerContext) {
        guard handshakeAnswer == nil, let flusher else { return }
        switch SocketWriter.claim(
            context, scratch: flusher.iovecs, metrics: metrics, streamThresholds: streamThresholds,
            heardNanos: machine.heardNanos)
        {
        case .success(let writer):
            socketWriter = writer
            metrics.socketWriter(claimed: true)
        case .failure(.notNow):
            break
        case .failure(.never):
            mayWriteSocket = false
            metrics.socketWriter(claimed: false)
        }
    }

    /// Writes the held 101 answer ahead of the first frame; it is not flushed here.
    private func writeHandshakeAnswer() {
        guard let answer = handshakeAnswer, let context else { return }
        handshakeAnswer = nil
        context.write(NIOAny(answer), promise: nil)
    }

    /// The connection's ids for a log message, built only when something is logged.
    private func connectionMetadata(_ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = extra
        metadata["client.ip"] = "\(clientIP)"
        if case .admitted(let admitted) = admission {
            metadata["connection.id"] = "\(admitted.id)"
            metadata["user.id"] = "\(admitted.principal.userID)"
            metadata["session.id"] = "\(admitted.sessionID)"
        }
        return metadata
    }

    // MARK: Heartbeat

    private func startHeartbeat() {
        guard let context else { return }
        let ticker = HeartbeatTicker.on(context.eventLoop, intervalNanos: machine.configuration.pingIntervalNanos)
        ticker.add(self)
        self.ticker = ticker
        flusher = LoopFlusher.on(context.eventLoop)
    }

    private func stopHeartbeat() {
        ticker?.remove(self)
        ticker = nil
    }

    /// Called by the flusher, in a task of its own on this connection's loop (never from
    /// inside the pipeline: see `SocketWriter.FlushSite`).
    func flushDeliveries() {
        guard flushDue, let context else { return }
        flushDue = false
        if let socketWriter {
            socketWriter.flush(context, from: .loopTask)
        } else {
            context.flush()
        }
    }

    /// Called by the ticker, on this connection's loop.
    func heartbeatTick(nowNanos: UInt64) {
        perform(machine.tick(nowNanos: nowNanos))
    }

    // MARK: Closing

    /// Closes with `code` (refusal, restart, shutdown), unless a close is already under way.
    func startClose(code: WebSocketErrorCode, reason: String) {
        perform(machine.close(code: code, reason: reason, nowNanos: Self.nowNanos))
    }

    /// Writes our one close frame and makes sure the channel is closed by its deadline,
    /// whether or not the peer reads or answers.
    private func sendClose(_ close: WebSocketStateMachine.Close) {
        switch close.cause {
        case .protocolViolation:
            logger.info("websocket protocol violation", metadata: connectionMetadata(["reason": "\(close.reason)"]))
        case .messageTooLarge:
            metrics.oversizedMessage()
        case .rateLimitAbuse:
            metrics.rateLimited()
            logger.info("closing flooding client", metadata: connectionMetadata())
        case .slowConsumer:
            metrics.slowConsumer()
            logger.info("closing slow consumer", metadata: connectionMetadata())
        case .pingTimeout:
            metrics.pingTimeout()
            logger.info(
                "closing silent client",
                metadata: connectionMetadata([
                    "after.seconds": "\(2 * Double(machine.configuration.pingIntervalNanos) / 1e9)"
                ]))
        case .peerClosed, .requested:
            break
        }
        stopHeartbeat()
        guard let context else { return }
        let channel = context.channel
        // The close frame goes through NIO, behind whatever is unflushed; so does anything after.
        socketWriter?.release(context)
        socketWriter = nil
        mayWriteSocket = false
        writeHandshakeAnswer()
        let written = context.writeAndFlush(
            NIOAny(WebSocketWireFrame.close(code: close.code, reason: close.reason)))
        if close.closeWhenWritten {
            written.whenComplete { _ in channel.close(promise: nil) }
        } else {
            written.whenFailure { _ in channel.close(promise: nil) }
        }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        closeTimer = context.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(close.deadlineNanos)) {
            let handler = bound.value
            handler.perform(handler.machine.tick(nowNanos: Self.nowNanos))
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let decoderError = error as? NIOWebSocketError {
            logger.info("websocket protocol error", metadata: connectionMetadata(["error": "\(decoderError)"]))
            perform(machine.decoderFailed(decoderError, nowNanos: Self.nowNanos))
            return
        }
        // The decoder reads nothing after its own error; our close frame is already on its way.
        if error is ByteToMessageDecoderError, !machine.isOpen { return }
        logger.debug("websocket error", metadata: connectionMetadata(["error": "\(error)"]))
        context.close(promise: nil)
    }
}
