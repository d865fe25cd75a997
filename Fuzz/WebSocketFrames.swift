import AiravataProtocol
import NIOCore
import NIOWebSocket

@testable import AiravataServerFrames

/// A client's frames, as NIO's decoder hands them over, through the connection's RFC 6455
/// rules (`WebSocketStateMachine`), mixed with the handler's other inputs: a queued
/// message's turn, writes, heartbeat ticks, a close it asks for, time passing.
///
/// The input is a list of steps. A step's first byte picks it: a frame (then a flags byte:
/// fin, unmasked, three reserved bits and the opcode; a length byte; the payload), a
/// message's turn, a tick, a write, a requested close, or time.
///
/// Invariants: a message handed on is exactly its frames' payloads joined, within the size
/// bound, in at most `maxFragmentsPerMessage` frames, and valid UTF-8 when it is text; a
/// pong carries its ping's payload; we send at most one close frame, with a code a server
/// may send, and after it nothing is handed on, answered or written; the channel is
/// closed only after our close frame or on the peer's close.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzWebSocketFrames(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = Steps(bytes: UnsafeBufferPointer(start: data, count: size))
    let configuration = WebSocketStateMachine.Configuration(
        maxMessageBytes: 512, ratePerSecond: 50, maxOutboundBytes: 4_096, pingIntervalNanos: 1_000_000_000,
        closeTimeoutNanos: 2_000_000_000)
    var machine = WebSocketStateMachine(configuration: configuration, nowNanos: 0)
    var model = Model(maxMessageBytes: configuration.maxMessageBytes)
    var now: UInt64 = 0

    while let step = input.next() {
        switch step % 8 {
        case 0...3:
            guard let flags = input.next(), let length = input.next() else { return 0 }
            let payload = input.take(Int(length))
            let opcode = WebSocketOpcode(encodedWebSocketOpcode: flags >> 4)!
            let unmasked = flags & 0b10 != 0
            let mask: WebSocketMaskingKey? = unmasked ? nil : WebSocketMaskingKey([step, flags, length, 0x5a])
            var buffer = ByteBuffer(bytes: payload)
            if let mask { buffer.webSocketMask(mask) }
            let frame = WebSocketFrame(
                fin: flags & 1 != 0, rsv1: flags & 0b100 != 0, rsv2: flags & 0b1000 != 0, rsv3: false,
                opcode: opcode, maskKey: mask, data: buffer)
            let action = machine.received(frame, nowNanos: now)
            model.frame(opcode: opcode, fin: frame.fin, payload: payload, action: action)
        case 4:
            if let message = model.nextQueued() {
                model.check(machine.process(message, nowNanos: now), after: "a message's turn")
            }
        case 5:
            now += UInt64(input.next() ?? 0) * 20_000_000
            model.check(machine.tick(nowNanos: now), after: "a tick")
        case 6:
            let bytes = Int(input.next() ?? 0) * 8
            let buffered = Int(input.next() ?? 0) * 16
            let outbound = machine.outbound(bytes: bytes, bufferedBytes: buffered, nowNanos: now)
            model.outbound(outbound, bytes: bytes, buffered: buffered, limit: configuration.maxOutboundBytes)
        default:
            if (input.next() ?? 0) & 1 == 0 {
                now += UInt64(input.next() ?? 0) * 1_000_000
            } else {
                model.check(machine.close(code: .goingAway, reason: "restart", nowNanos: now), after: "a close")
            }
        }
    }
    return 0
}

/// What the machine may and may not do, from what it was given and what it answered.
struct Model {
    let maxMessageBytes: Int
    /// The payloads of the data message in progress, as the client sent them.
    var partial: (isText: Bool, payload: [UInt8], frames: Int)?
    /// Messages handed on and not yet given their turn.
    var queued: [ByteBuffer] = []
    /// Our close frame is out.
    var closeSent = false
    /// The machine said to close the channel.
    var channelClosed = false

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    mutating func nextQueued() -> ByteBuffer? {
        queued.isEmpty ? nil : queued.removeFirst()
    }

    mutating func frame(opcode: WebSocketOpcode, fin: Bool, payload: [UInt8], action: WebSocketStateMachine.Action) {
        let before = closeSent || channelClosed
        // Follow the message the client is sending, while we still read.
        if !before {
            switch opcode {
            case .text, .binary:
                partial = (opcode == .text, payload, 1)
            case .continuation:
                if partial != nil {
                    partial!.payload += payload
                    partial!.frames += 1
                }
            default:
                break
            }
        }
        if case .writePong(let pong) = action {
            invariant(opcode == .ping, "a pong for a \(opcode) frame")
            invariant(Array(pong.readableBytesView) == payload, "a pong that is not its ping's payload")
            invariant(payload.count <= 125, "a pong of \(payload.count) bytes")
        }
        if case .receivedMessage(let message) = action {
            invariant(!before, "a message handed on after the close")
            invariant(
                fin && (opcode == .text || opcode == .binary || opcode == .continuation), "a message at \(opcode)")
            guard let whole = partial else { fatalError("invariant broken: a message with no frames") }
            invariant(Array(message.readableBytesView) == whole.payload, "a message that is not its frames joined")
            invariant(message.readableBytes <= maxMessageBytes, "a message of \(message.readableBytes) bytes")
            invariant(
                whole.frames <= WebSocketStateMachine.maxFragmentsPerMessage, "a message in \(whole.frames) frames")
            if whole.isText { invariant(String(validating: whole.payload, as: UTF8.self) != nil, "text not UTF-8") }
            queued.append(message)
        }
        if fin, opcode == .text || opcode == .binary || opcode == .continuation { partial = nil }
        check(action, after: "a \(opcode) frame")
    }

    mutating func check(_ action: WebSocketStateMachine.Action, after what: String) {
        switch action {
        case .none, .receivedMessage, .replyRateLimited, .sendPings:
            if case .sendPings = action { invariant(!closeSent, "pings after our close, at \(what)") }
        case .handle, .writePong:
            invariant(!closeSent && !channelClosed, "\(action) after the close, at \(what)")
        case .sendClose(let close):
            sent(close, at: what)
        case .closeChannel:
            channelClosed = true
        }
        if case .sendClose = action { partial = nil }
    }

    mutating func outbound(_ action: WebSocketStateMachine.OutboundAction, bytes: Int, buffered: Int, limit: Int) {
        switch action {
        case .write:
            invariant(!closeSent && !channelClosed, "a write allowed after the close")
            invariant(bytes + buffered <= limit, "a write past the outbound budget")
        case .drop:
            invariant(closeSent || channelClosed, "a write dropped on an open connection")
        case .sendClose(let close):
            invariant(bytes + buffered > limit, "a slow-consumer close within the budget")
            sent(close, at: "a write")
        }
    }

    private mutating func sent(_ close: WebSocketStateMachine.Close, at what: String) {
        invariant(!closeSent, "a second close frame, at \(what)")
        invariant(!channelClosed, "a close frame after the channel closed, at \(what)")
        let code = UInt16(webSocketErrorCode: close.code)
        invariant((1000...4999).contains(code) && ![1004, 1005, 1006, 1015].contains(code), "close code \(code)")
        closeSent = true
    }
}

/// The fuzzer's bytes, read front to back.
struct Steps {
    let bytes: UnsafeBufferPointer<UInt8>
    var offset = 0

    mutating func next() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, offset + count)
        defer { offset = end }
        return Array(bytes[offset..<end])
    }
}
