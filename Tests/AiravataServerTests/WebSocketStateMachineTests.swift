import NIOCore
import NIOWebSocket
import Testing

@testable import AiravataServer

/// Each RFC 6455 rule on the state machine alone: frames in, actions out, time as numbers.
@Suite("WebSocket state machine: RFC 6455 rules and the close handshake")
struct WebSocketStateMachineTests {
    typealias Machine = WebSocketStateMachine

    static let second: UInt64 = 1_000_000_000
    static let start: UInt64 = 1_000 * second

    static func machine(rate: Double = 0, maxOutboundBytes: Int = 1_000) -> Machine {
        Machine(
            configuration: .init(
                maxMessageBytes: 1_024, ratePerSecond: rate, maxOutboundBytes: maxOutboundBytes,
                pingIntervalNanos: second, closeTimeoutNanos: 5 * second),
            nowNanos: start)
    }

    static func frame(
        _ opcode: WebSocketOpcode, _ bytes: [UInt8], fin: Bool = true, masked: Bool = true,
        rsv1: Bool = false, rsv2: Bool = false, rsv3: Bool = false
    ) -> WebSocketFrame {
        let key: WebSocketMaskingKey? = masked ? [0x0F, 0xA0, 0x55, 0x01] : nil
        var data = ByteBuffer(bytes: bytes)
        if let key { data.webSocketMask(key) }
        return WebSocketFrame(fin: fin, rsv1: rsv1, rsv2: rsv2, rsv3: rsv3, opcode: opcode, maskKey: key, data: data)
    }

    static func text(_ string: String, fin: Bool = true) -> WebSocketFrame {
        frame(.text, Array(string.utf8), fin: fin)
    }

    static func closePayload(_ code: UInt16, reason: [UInt8] = []) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)] + reason
    }

    /// The close frame an action asks for, after checking its code.
    @discardableResult
    static func expectClose(
        _ action: Machine.Action, code: UInt16, sourceLocation: SourceLocation = #_sourceLocation
    ) -> Machine.Close? {
        guard case .sendClose(let close) = action else {
            Issue.record("expected a close frame with \(code), got \(action)", sourceLocation: sourceLocation)
            return nil
        }
        #expect(
            UInt16(webSocketErrorCode: close.code) == code,
            "expected close code \(code), got \(UInt16(webSocketErrorCode: close.code)) (\(close.reason))",
            sourceLocation: sourceLocation)
        return close
    }

    // MARK: Frames

    @Test("a masked text frame is a message")
    func textMessage() {
        var machine = Self.machine()
        let action = machine.received(Self.text(#"{"type":"ping"}"#), nowNanos: Self.start)
        #expect(action == .receivedMessage(ByteBuffer(string: #"{"type":"ping"}"#)))
    }

    @Test("an unmasked client frame closes with 1002")
    func unmasked() {
        var machine = Self.machine()
        Self.expectClose(
            machine.received(Self.frame(.text, [0x7B, 0x7D], masked: false), nowNanos: Self.start), code: 1002)
    }

    @Test("any reserved bit closes with 1002", arguments: [UInt8(0x40), 0x20, 0x10])
    func reservedBits(bit: UInt8) {
        var machine = Self.machine()
        let frame = Self.frame(.text, [0x7B, 0x7D], rsv1: bit == 0x40, rsv2: bit == 0x20, rsv3: bit == 0x10)
        Self.expectClose(machine.received(frame, nowNanos: Self.start), code: 1002)
    }

    @Test("an unknown opcode closes with 1002", arguments: [UInt8(3), 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    func unknownOpcode(encoded: UInt8) throws {
        var machine = Self.machine()
        let opcode = try #require(WebSocketOpcode(encodedWebSocketOpcode: encoded))
        Self.expectClose(machine.received(Self.frame(opcode, []), nowNanos: Self.start), code: 1002)
    }

    @Test("a text message that is not UTF-8 closes with 1007, checked after reassembly")
    func invalidUTF8() {
        var machine = Self.machine()
        #expect(machine.received(Self.frame(.text, [0x61, 0xC3], fin: false), nowNanos: Self.start) == .none)
        Self.expectClose(machine.received(Self.frame(.continuation, [0x28]), nowNanos: Self.start), code: 1007)

        // A character split across two fragments is fine.
        var split = Self.machine()
        #expect(split.received(Self.frame(.text, [0x61, 0xC3], fin: false), nowNanos: Self.start) == .none)
        #expect(
            split.received(Self.frame(.continuation, [0xA9]), nowNanos: Self.start)
                == .receivedMessage(ByteBuffer(bytes: [0x61, 0xC3, 0xA9])))

        // Binary carries no text rule.
        var binary = Self.machine()
        #expect(
            binary.received(Self.frame(.binary, [0xC3, 0x28]), nowNanos: Self.start)
                == .receivedMessage(ByteBuffer(bytes: [0xC3, 0x28])))
    }

    @Test("a fragmented control frame or one over 125 bytes closes with 1002")
    func controlFrames() {
        var fragmented = Self.machine()
        Self.expectClose(fragmented.received(Self.frame(.ping, [1], fin: false), nowNanos: Self.start), code: 1002)
        var large = Self.machine()
        Self.expectClose(
            large.received(Self.frame(.ping, Array(repeating: 1, count: 126)), nowNanos: Self.start), code: 1002)
        // NIO's decoder catches both first; its errors get the same answers.
        var decoder = Self.machine()
        Self.expectClose(decoder.decoderFailed(.fragmentedControlFrame, nowNanos: Self.start), code: 1002)
        var decoderLarge = Self.machine()
        Self.expectClose(decoderLarge.decoderFailed(.multiByteControlFrameLength, nowNanos: Self.start), code: 1002)
        var decoderFrame = Self.machine()
        let close = Self.expectClose(decoderFrame.decoderFailed(.invalidFrameLength, nowNanos: Self.start), code: 1009)
        #expect(close?.closeWhenWritten == true, "the decoder reads nothing more, so no close reply can come")
    }

    @Test("a control frame between fragments is handled, the message still completes")
    func controlBetweenFragments() {
        var machine = Self.machine()
        #expect(machine.received(Self.text("{\"type\":", fin: false), nowNanos: Self.start) == .none)
        #expect(machine.received(Self.frame(.ping, [7]), nowNanos: Self.start) == .writePong(ByteBuffer(bytes: [7])))
        #expect(
            machine.received(Self.frame(.continuation, Array("\"ping\"}".utf8)), nowNanos: Self.start)
                == .receivedMessage(ByteBuffer(string: #"{"type":"ping"}"#)))
    }

    @Test("a new data frame inside a fragmented message closes with 1002")
    func newMessageInsideFragmented() {
        var machine = Self.machine()
        #expect(machine.received(Self.text("{", fin: false), nowNanos: Self.start) == .none)
        Self.expectClose(machine.received(Self.text("}"), nowNanos: Self.start), code: 1002)
        var binary = Self.machine()
        #expect(binary.received(Self.text("{", fin: false), nowNanos: Self.start) == .none)
        Self.expectClose(binary.received(Self.frame(.binary, [1]), nowNanos: Self.start), code: 1002)
    }

    @Test("a continuation without a message in progress closes with 1002")
    func strayContinuation() {
        var machine = Self.machine()
        Self.expectClose(machine.received(Self.frame(.continuation, [0x7D]), nowNanos: Self.start), code: 1002)
    }

    @Test("a message over the maximum after reassembly closes with 1009")
    func oversizedMessage() {
        var machine = Self.machine()
        let chunk = Array(repeating: UInt8(ascii: "x"), count: 600)
        #expect(machine.received(Self.frame(.text, chunk, fin: false), nowNanos: Self.start) == .none)
        Self.expectClose(machine.received(Self.frame(.continuation, chunk), nowNanos: Self.start), code: 1009)
    }

    @Test("a message may arrive in up to the bound of frames, empty ones included; one more closes with 1008")
    func fragmentBound() {
        let most = Machine.maxFragmentsPerMessage
        var machine = Self.machine()
        #expect(machine.received(Self.text("[", fin: false), nowNanos: Self.start) == .none)
        for _ in 0..<(most - 2) {
            #expect(machine.received(Self.frame(.continuation, [], fin: false), nowNanos: Self.start) == .none)
        }
        #expect(
            machine.received(Self.frame(.continuation, Array("]".utf8)), nowNanos: Self.start)
                == .receivedMessage(ByteBuffer(string: "[]")),
            "a message in exactly \(most) frames is whole")
        // The count starts again with the next message.
        #expect(machine.received(Self.text("{", fin: false), nowNanos: Self.start) == .none)
        for _ in 0..<(most - 1) {
            #expect(machine.received(Self.frame(.continuation, [], fin: false), nowNanos: Self.start) == .none)
        }
        let close = Self.expectClose(
            machine.received(Self.frame(.continuation, Array("}".utf8)), nowNanos: Self.start), code: 1008)
        #expect(close?.reason.contains("\(most) frames") == true)
        #expect(!machine.isOpen)
    }

    @Test("a message in many small frames is put together in order")
    func manyFragmentsInOrder() {
        var machine = Self.machine()
        let digits = (0..<500).map { String($0 % 10) }
        #expect(machine.received(Self.text(digits[0], fin: false), nowNanos: Self.start) == .none)
        for digit in digits.dropFirst().dropLast() {
            #expect(
                machine.received(Self.frame(.continuation, Array(digit.utf8), fin: false), nowNanos: Self.start)
                    == .none)
        }
        #expect(
            machine.received(Self.frame(.continuation, Array(digits.last!.utf8)), nowNanos: Self.start)
                == .receivedMessage(ByteBuffer(string: digits.joined())))
    }

    // MARK: Close handshake

    @Test(
        "a client close with a code it may not send is answered 1002",
        arguments: [UInt16(0), 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65_535])
    func invalidCloseCode(code: UInt16) {
        var machine = Self.machine()
        let action = machine.received(Self.frame(.connectionClose, Self.closePayload(code)), nowNanos: Self.start)
        let close = Self.expectClose(action, code: 1002)
        #expect(close?.closeWhenWritten == true)
    }

    @Test(
        "a valid client close code is echoed",
        arguments: [UInt16(1000), 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])
    func echoedCloseCode(code: UInt16) {
        var machine = Self.machine()
        let action = machine.received(
            Self.frame(.connectionClose, Self.closePayload(code, reason: Array("bye".utf8))), nowNanos: Self.start)
        let close = Self.expectClose(action, code: code)
        #expect(close?.cause == .peerClosed)
        #expect(close?.closeWhenWritten == true, "the peer closed first: hang up once the echo is written")
    }

    @Test("a one-byte close payload is answered 1002, an empty one 1000")
    func closePayloadLength() {
        var oneByte = Self.machine()
        Self.expectClose(oneByte.received(Self.frame(.connectionClose, [0x03]), nowNanos: Self.start), code: 1002)
        var empty = Self.machine()
        Self.expectClose(empty.received(Self.frame(.connectionClose, []), nowNanos: Self.start), code: 1000)
    }

    @Test("a close reason that is not UTF-8 is answered 1007")
    func closeReasonNotUTF8() {
        var machine = Self.machine()
        let payload = Self.closePayload(1000, reason: [0x6F, 0x6B, 0xFF])
        Self.expectClose(machine.received(Self.frame(.connectionClose, payload), nowNanos: Self.start), code: 1007)
    }

    @Test("after our close frame nothing is written, and the wait for the peer is bounded")
    func nothingAfterOurClose() {
        var machine = Self.machine()
        let close = Self.expectClose(machine.close(code: .goingAway, reason: "bye", nowNanos: Self.start), code: 1001)
        #expect(close?.closeWhenWritten == false, "we closed first: the peer's answer is awaited")
        #expect(close?.deadlineNanos == Self.start + 5 * Self.second)
        #expect(machine.outbound(bytes: 10, bufferedBytes: 0, nowNanos: Self.start) == .drop)
        #expect(machine.close(code: .normalClosure, reason: "again", nowNanos: Self.start) == .none)
        #expect(machine.received(Self.text("{}"), nowNanos: Self.start) == .none)
        #expect(machine.received(Self.frame(.ping, [1]), nowNanos: Self.start) == .none)
        #expect(machine.received(Self.frame(.text, [1], masked: false), nowNanos: Self.start) == .none)
        #expect(machine.tick(nowNanos: Self.start + 4 * Self.second) == .none)
        #expect(machine.tick(nowNanos: Self.start + 5 * Self.second) == .closeChannel)
        #expect(machine.tick(nowNanos: Self.start + 6 * Self.second) == .none)
    }

    @Test("the peer's close after ours ends the connection")
    func peerAnswersOurClose() {
        var machine = Self.machine()
        Self.expectClose(machine.close(code: .goingAway, reason: "bye", nowNanos: Self.start), code: 1001)
        let answer = machine.received(Self.frame(.connectionClose, Self.closePayload(1001)), nowNanos: Self.start)
        #expect(answer == .closeChannel)
    }

    @Test("a protocol error closes once: later bad frames add nothing")
    func oneCloseFrame() {
        var machine = Self.machine()
        Self.expectClose(machine.received(Self.frame(.continuation, [1]), nowNanos: Self.start), code: 1002)
        #expect(machine.received(Self.frame(.continuation, [1]), nowNanos: Self.start) == .none)
        #expect(machine.decoderFailed(.invalidFrameLength, nowNanos: Self.start) == .none)
    }

    // MARK: Rate limit, budget, heartbeat

    @Test("ping frames count against the rate limit: error replies, then a 1008 close")
    func pingFlood() {
        var machine = Self.machine(rate: 1)  // burst of 2
        let ping = Self.frame(.ping, [9])
        #expect(machine.received(ping, nowNanos: Self.start) == .writePong(ByteBuffer(bytes: [9])))
        #expect(machine.process(ByteBuffer(string: "{}"), nowNanos: Self.start) == .handle(ByteBuffer(string: "{}")))
        for index in 0..<machine.configuration.maxRateLimitedInARow {
            let action = machine.received(ping, nowNanos: Self.start)
            guard action == .replyRateLimited else {
                Issue.record("ping \(index) over the limit: expected an error reply, got \(action)")
                return
            }
        }
        let close = Self.expectClose(machine.received(ping, nowNanos: Self.start), code: 1008)
        #expect(close?.cause == .rateLimitAbuse)
    }

    @Test("messages dropped or refused unhandled are charged too: a flood of them ends in the 1008 close")
    func refusedMessagesCharged() {
        var machine = Self.machine(rate: 1)  // burst of 2
        #expect(machine.charge(nowNanos: Self.start) == .none)
        #expect(machine.charge(nowNanos: Self.start) == .none)
        for _ in 0..<machine.configuration.maxRateLimitedInARow {
            #expect(machine.charge(nowNanos: Self.start) == .replyRateLimited)
        }
        let close = Self.expectClose(machine.charge(nowNanos: Self.start), code: 1008)
        #expect(close?.cause == .rateLimitAbuse)
    }

    @Test("the limit refills with time and the count of excess starts again")
    func rateRefills() {
        var machine = Self.machine(rate: 1)
        let ping = Self.frame(.ping, [])
        _ = machine.received(ping, nowNanos: Self.start)
        _ = machine.received(ping, nowNanos: Self.start)
        for _ in 0..<machine.configuration.maxRateLimitedInARow {
            #expect(machine.process(ByteBuffer(string: "{}"), nowNanos: Self.start) == .replyRateLimited)
        }
        let later = Self.start + Self.second
        #expect(machine.received(ping, nowNanos: later) == .writePong(ByteBuffer()))
        #expect(machine.received(ping, nowNanos: later) == .replyRateLimited, "one token per second")
    }

    @Test("every write counts against the outbound budget; over it, a slow-consumer close")
    func outboundBudget() {
        var machine = Self.machine(maxOutboundBytes: 1_000)
        #expect(machine.outbound(bytes: 100, bufferedBytes: 900, nowNanos: Self.start) == .write)
        guard case .sendClose(let close) = machine.outbound(bytes: 101, bufferedBytes: 900, nowNanos: Self.start) else {
            Issue.record("expected a slow-consumer close over the budget")
            return
        }
        #expect(close.cause == .slowConsumer)
        #expect(UInt16(webSocketErrorCode: close.code) == 1008)
        #expect(machine.outbound(bytes: 1, bufferedBytes: 0, nowNanos: Self.start) == .drop)
    }

    @Test("heartbeat: pings while the client lives, a 1001 close after two silent intervals")
    func heartbeat() {
        var machine = Self.machine()
        #expect(machine.tick(nowNanos: Self.start + Self.second) == .sendPings)
        _ = machine.received(Self.frame(.pong, []), nowNanos: Self.start + Self.second)
        #expect(machine.tick(nowNanos: Self.start + 2 * Self.second) == .sendPings)
        let close = Self.expectClose(machine.tick(nowNanos: Self.start + 3 * Self.second), code: 1001)
        #expect(close?.closeWhenWritten == true, "a silent peer will not answer the close")
    }

    @Test("a long close reason is cut to 123 bytes on a character boundary")
    func longCloseReason() {
        let frame = WebSocketWireFrame.close(code: .policyViolation, reason: String(repeating: "é", count: 100))
        let bytes = Array(frame.readableBytesView)
        #expect(bytes.first == 0x88)
        #expect(
            bytes.count >= 2 && Int(bytes[1]) == bytes.count - 2, "expected a one-byte length, got \(bytes.prefix(2))")
        #expect(bytes.count - 2 <= 125, "expected a control frame of at most 125 bytes, got \(bytes.count - 2)")
        let reason = Array(bytes.dropFirst(4))
        #expect(String(validating: reason, as: UTF8.self) != nil, "expected a UTF-8 reason, got \(reason)")
        #expect(reason.count == 122)
    }
}
