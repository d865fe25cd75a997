import AiravataCore
import AiravataProtocol
import NIOCore
import NIOWebSocket

/// The RFC 6455 rules for one server-side WebSocket, as a value. Each input (a frame
/// received, a message whose turn has come, a write the handler wants to make, a timer
/// tick, a local close) returns what the handler must do; the handler does only that.
/// Time comes in as `nowNanos`, so tests drive every rule without a socket or a sleep.
struct WebSocketStateMachine {
    struct Configuration {
        /// Largest message after reassembly; larger ones close with 1009.
        var maxMessageBytes: Int
        /// Messages and ping frames per second; 0 turns the limit off.
        var ratePerSecond: Double
        /// Bytes queued for the client (beyond the socket) before it counts as a slow
        /// consumer; every write counts, pongs and replies as well as events.
        var maxOutboundBytes: Int
        var pingIntervalNanos: UInt64
        /// How long a close frame of ours may wait to be written and answered.
        var closeTimeoutNanos: UInt64

        /// Over-the-limit inputs in a row after which flooding is no longer a client bug
        /// but abuse, and ends the connection.
        var maxRateLimitedInARow: Int { max(100, Int(ratePerSecond * 10)) }

        init(
            maxMessageBytes: Int, ratePerSecond: Double, maxOutboundBytes: Int, pingIntervalNanos: UInt64,
            closeTimeoutNanos: UInt64
        ) {
            self.maxMessageBytes = maxMessageBytes
            self.ratePerSecond = ratePerSecond
            self.maxOutboundBytes = maxOutboundBytes
            self.pingIntervalNanos = pingIntervalNanos
            self.closeTimeoutNanos = closeTimeoutNanos
        }

        init(_ server: ServerConfiguration) {
            self.init(
                maxMessageBytes: server.maxFrameSize,
                ratePerSecond: server.rateLimit,
                maxOutboundBytes: server.maxOutboundBytes,
                pingIntervalNanos: Self.nanos(server.pingIntervalSeconds),
                closeTimeoutNanos: Self.nanos(server.closeTimeoutSeconds)
            )
        }

        static func nanos(_ seconds: Double) -> UInt64 {
            UInt64(max(0.001, seconds) * 1e9)
        }
    }

    enum State {
        /// A data message still arriving is in `partial`.
        case open
        /// Our close frame is out; the channel closes at the peer's close or at the deadline.
        case closing(deadlineNanos: UInt64)
        /// The channel is closing or closed: nothing more goes in or out.
        case closed
    }

    struct PartialMessage {
        var isText: Bool
        var payload: ByteBuffer
        var fragments = 1
    }

    /// Most frames one data message may arrive in. Browsers send a message in one frame;
    /// the bound stops a client that keeps a message open with empty continuation frames,
    /// which no size limit would catch.
    static let maxFragmentsPerMessage = 1_024

    /// What the handler does after an input.
    enum Action: Equatable {
        case none
        /// A complete message arrived: queue it in order and pass it to
        /// `process(_:nowNanos:)` when its turn comes.
        case receivedMessage(ByteBuffer)
        /// The message is within the rate limit: handle it.
        case handle(ByteBuffer)
        /// Answer a ping frame with a pong carrying this payload.
        case writePong(ByteBuffer)
        /// Over the rate limit: tell the client and keep the connection.
        case replyRateLimited
        /// Heartbeat: send the JSON ping and a ping frame.
        case sendPings
        case sendClose(Close)
        /// Close the channel now, dropping whatever is still queued.
        case closeChannel
    }

    /// The handler's answer to "may I write these bytes?".
    enum OutboundAction: Equatable {
        case write
        /// Our close frame is out: nothing may follow it.
        case drop
        /// The client does not read fast enough: close it instead of queueing.
        case sendClose(Close)
    }

    /// A close frame to write, and what follows it.
    struct Close: Equatable {
        enum Cause: Equatable {
            /// The client broke RFC 6455 (1002, 1007).
            case protocolViolation
            case messageTooLarge
            case rateLimitAbuse
            case slowConsumer
            case pingTimeout
            /// The client closed; this is our echo.
            case peerClosed
            /// The handler asked (refusal, restart, shutdown).
            case requested
        }

        var code: WebSocketErrorCode
        var reason: String
        var cause: Cause
        /// True when nothing more is worth reading (the peer closed first, the decoder
        /// failed, the peer is silent): close the channel as soon as the frame is written.
        /// Otherwise wait for the peer's close frame.
        var closeWhenWritten: Bool
        /// Either way the channel is closed by then: call `tick` at this instant.
        var deadlineNanos: UInt64
    }

    let configuration: Configuration
    /// Set only by the machine itself (here and in `+Close`).
    var state = State.open
    /// The fragments of a data message still arriving. Kept out of `state`: a buffer in an
    /// enum's payload is shared with the copy a pattern binds, so each continuation frame
    /// copied the whole message so far.
    private var partial: PartialMessage?
    private var heartbeat: Heartbeat
    private var rateLimiter: RateLimiter
    private var rateLimitedInARow = 0

    /// When the client last sent a frame, or connected.
    var heardNanos: UInt64 { heartbeat.lastSeenNanos }

    init(configuration: Configuration, nowNanos: UInt64) {
        self.configuration = configuration
        self.heartbeat = Heartbeat(intervalNanos: configuration.pingIntervalNanos, nowNanos: nowNanos)
        self.rateLimiter = RateLimiter(ratePerSecond: configuration.ratePerSecond, nowNanos: nowNanos)
    }

    var isOpen: Bool {
        if case .open = state { return true }
        return false
    }

    // MARK: Inbound

    /// A frame from the decoder. NIO has already checked its length against the maximum
    /// and the control-frame limits; the rest of RFC 6455 §5 is checked here.
    mutating func received(_ frame: WebSocketFrame, nowNanos: UInt64) -> Action {
        guard case .open = state else {
            // Waiting for the peer's close: everything else is dropped unread.
            if case .closing = state, frame.opcode == .connectionClose {
                state = .closed
                return .closeChannel
            }
            return .none
        }
        heartbeat.sawLife(nowNanos: nowNanos)
        guard frame.maskKey != nil else {
            return violation("Client frames must be masked", nowNanos: nowNanos)
        }
        guard !frame.rsv1, !frame.rsv2, !frame.rsv3 else {
            return violation("Reserved bits set without a negotiated extension", nowNanos: nowNanos)
        }
        if frame.opcode.isControlOpcode {
            guard frame.fin else { return violation("Fragmented control frame", nowNanos: nowNanos) }
            guard frame.length <= 125 else {
                return violation("Control frame payload over 125 bytes", nowNanos: nowNanos)
            }
        }
        switch frame.opcode {
        case .text, .binary:
            guard partial == nil else {
                return violation("New data frame inside a fragmented message", nowNanos: nowNanos)
            }
            partial = PartialMessage(isText: frame.opcode == .text, payload: frame.unmaskedData)
            return assemble(fin: frame.fin, nowNanos: nowNanos)
        case .continuation:
            guard partial != nil else {
                return violation("Continuation frame without a message in progress", nowNanos: nowNanos)
            }
            var payload = frame.unmaskedData
            guard partial!.payload.readableBytes + payload.readableBytes <= configuration.maxMessageBytes else {
                partial = nil
                return tooLarge(nowNanos: nowNanos)
            }
            guard partial!.fragments < Self.maxFragmentsPerMessage else {
                partial = nil
                return close(
                    code: WebSocketErrorCode.policyViolation,
                    reason: "Message sent in more than \(Self.maxFragmentsPerMessage) frames",
                    cause: .protocolViolation,
                    closeWhenWritten: false, nowNanos: nowNanos)
            }
            partial!.payload.writeBuffer(&payload)
            partial!.fragments += 1
            return assemble(fin: frame.fin, nowNanos: nowNanos)
        case .ping:
            switch rateVerdict(nowNanos: nowNanos) {
            case .none: return .writePong(frame.unmaskedData)
            case let limited: return limited
            }
        case .pong:
            return .none
        case .connectionClose:
            return receivedClose(payload: frame.unmaskedData, nowNanos: nowNanos)
        default:
            return violation("Unknown opcode", nowNanos: nowNanos)
        }
    }

    /// After a data frame went into `partial`: the message, when that frame was its last.
    private mutating func assemble(fin: Bool, nowNanos: UInt64) -> Action {
        guard let message = partial else { return .none }
        guard message.payload.readableBytes <= configuration.maxMessageBytes else {
            partial = nil
            return tooLarge(nowNanos: nowNanos)
        }
        guard fin else { return .none }
        partial = nil
        if message.isText, !UTF8Validation.isValid(message.payload.readableBytesView) {
            return close(
                code: CloseCodes.invalidPayload, reason: "Text message is not valid UTF-8", cause: .protocolViolation,
                closeWhenWritten: false, nowNanos: nowNanos)
        }
        return .receivedMessage(message.payload)
    }

    /// A queued message's turn has come: it counts against the rate limit now, so that
    /// messages held during admission or a subscription change are not charged twice.
    mutating func process(_ message: ByteBuffer, nowNanos: UInt64) -> Action {
        guard isOpen else { return .none }
        switch rateVerdict(nowNanos: nowNanos) {
        case .none: return .handle(message)
        case let limited: return limited
        }
    }

    /// A message that will not be handled (dropped during admission, or refused while too
    /// many wait for a reply) still costs its sender: `.none` within the rate limit, else the
    /// same answer as any excess input, up to the close for abuse.
    mutating func charge(nowNanos: UInt64) -> Action {
        guard isOpen else { return .none }
        return rateVerdict(nowNanos: nowNanos)
    }

    /// `.none` when within the limit, else what to do about the excess.
    private mutating func rateVerdict(nowNanos: UInt64) -> Action {
        guard rateLimiter.allow(nowNanos: nowNanos) else {
            rateLimitedInARow += 1
            guard rateLimitedInARow > configuration.maxRateLimitedInARow else { return .replyRateLimited }
            return close(
                code: CloseCodes.rateLimitAbuse, reason: "Rate limit exceeded", cause: .rateLimitAbuse,
                closeWhenWritten: false, nowNanos: nowNanos)
        }
        rateLimitedInARow = 0
        return .none
    }

    private mutating func violation(_ reason: String, nowNanos: UInt64) -> Action {
        close(
            code: CloseCodes.protocolError, reason: reason, cause: .protocolViolation, closeWhenWritten: false,
            nowNanos: nowNanos)
    }

    private mutating func tooLarge(nowNanos: UInt64) -> Action {
        close(
            code: CloseCodes.messageTooLarge, reason: "Message too large", cause: .messageTooLarge,
            closeWhenWritten: false, nowNanos: nowNanos)
    }

    // MARK: Outbound and time

    /// Asked before every write. `bufferedBytes` is what the channel holds unwritten
    /// (the handler may pass 0 while the channel is writable, i.e. below its watermark).
    /// The time is read only when it is needed (a close deadline): this runs for every
    /// frame written to every connection.
    mutating func outbound(bytes: Int, bufferedBytes: Int, nowNanos: @autoclosure () -> UInt64) -> OutboundAction {
        guard isOpen else { return .drop }
        guard bufferedBytes + bytes <= configuration.maxOutboundBytes else {
            let close = closeFrame(
                code: CloseCodes.slowConsumer, reason: "Slow consumer: outbound queue overflow", cause: .slowConsumer,
                closeWhenWritten: false, nowNanos: nowNanos())
            return .sendClose(close)
        }
        return .write
    }

    /// The heartbeat's interval or a close deadline has come.
    mutating func tick(nowNanos: UInt64) -> Action {
        switch state {
        case .open:
            switch heartbeat.tick(nowNanos: nowNanos) {
            case .none:
                return .none
            case .sendPing:
                return .sendPings
            case .close:
                // A silent peer will not answer the close frame either.
                return close(
                    code: CloseCodes.pingTimeout, reason: "Ping timeout", cause: .pingTimeout, closeWhenWritten: true,
                    nowNanos: nowNanos)
            }
        case .closing(let deadline):
            guard nowNanos >= deadline else { return .none }
            state = .closed
            return .closeChannel
        case .closed:
            return .none
        }
    }
}
