import AiravataProtocol
import NIOCore
import NIOWebSocket

/// The close handshake (RFC 6455 §5.5.1, §7): one close frame from us at most, nothing
/// after it, and a bounded wait for the peer's.
extension WebSocketStateMachine {
    /// The handler wants the connection closed (refusal, slow consumer, restart).
    mutating func close(code: WebSocketErrorCode, reason: String, nowNanos: UInt64) -> Action {
        close(code: code, reason: reason, cause: .requested, closeWhenWritten: false, nowNanos: nowNanos)
    }

    /// NIO's frame decoder failed (a frame over the size limit, a fragmented or oversized
    /// control frame). It reads nothing after an error, so the peer's close would never be
    /// seen: close once ours is written.
    mutating func decoderFailed(_ error: NIOWebSocketError, nowNanos: UInt64) -> Action {
        switch error {
        case .invalidFrameLength:
            return close(
                code: CloseCodes.messageTooLarge, reason: "Message too large", cause: .messageTooLarge,
                closeWhenWritten: true, nowNanos: nowNanos)
        case .fragmentedControlFrame:
            return close(
                code: CloseCodes.protocolError, reason: "Fragmented control frame", cause: .protocolViolation,
                closeWhenWritten: true, nowNanos: nowNanos)
        case .multiByteControlFrameLength:
            return close(
                code: CloseCodes.protocolError, reason: "Control frame payload over 125 bytes",
                cause: .protocolViolation, closeWhenWritten: true, nowNanos: nowNanos)
        }
    }

    /// The channel went inactive.
    mutating func channelClosed() {
        state = .closed
    }

    /// The peer's close frame while we are open: check it, then answer and hang up.
    mutating func receivedClose(payload: ByteBuffer, nowNanos: UInt64) -> Action {
        var payload = payload
        guard payload.readableBytes != 1 else {
            return echo(code: CloseCodes.protocolError, reason: "Close frame payload of one byte", nowNanos: nowNanos)
        }
        // An empty close carries no code; a normal closure answers it.
        guard let code = payload.readInteger(as: UInt16.self) else {
            return echo(code: .normalClosure, reason: "", nowNanos: nowNanos)
        }
        guard Self.isValidReceivedCloseCode(code) else {
            return echo(code: CloseCodes.protocolError, reason: "Invalid close code \(code)", nowNanos: nowNanos)
        }
        guard UTF8Validation.isValid(payload.readableBytesView) else {
            return echo(code: CloseCodes.invalidPayload, reason: "Close reason is not valid UTF-8", nowNanos: nowNanos)
        }
        return echo(code: WebSocketErrorCode(codeNumber: Int(code)), reason: "", nowNanos: nowNanos)
    }

    /// Codes a peer may send (RFC 6455 §7.4): the defined ones, minus those reserved for
    /// "no code" (1005), "no close frame" (1006) and "TLS failure" (1015), plus the ranges
    /// for libraries and applications (3000–4999).
    static func isValidReceivedCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    private mutating func echo(code: WebSocketErrorCode, reason: String, nowNanos: UInt64) -> Action {
        close(code: code, reason: reason, cause: .peerClosed, closeWhenWritten: true, nowNanos: nowNanos)
    }

    /// Moves to `.closing` and returns the close frame to write, or nothing if ours is out.
    mutating func close(
        code: WebSocketErrorCode, reason: String, cause: Close.Cause, closeWhenWritten: Bool, nowNanos: UInt64
    ) -> Action {
        guard isOpen else { return .none }
        return .sendClose(
            closeFrame(code: code, reason: reason, cause: cause, closeWhenWritten: closeWhenWritten, nowNanos: nowNanos)
        )
    }

    /// Only from `.open`: the state moves to `.closing` here, so no second frame follows.
    mutating func closeFrame(
        code: WebSocketErrorCode, reason: String, cause: Close.Cause, closeWhenWritten: Bool, nowNanos: UInt64
    ) -> Close {
        let deadline = nowNanos + configuration.closeTimeoutNanos
        state = .closing(deadlineNanos: deadline)
        return Close(
            code: code, reason: reason, cause: cause, closeWhenWritten: closeWhenWritten, deadlineNanos: deadline)
    }
}
