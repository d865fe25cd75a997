package import AiravataCore
package import NIOCore
package import NIOWebSocket

/// Server-to-client WebSocket frames built by hand: unmasked, one buffer holding header
/// and payload. Identical bytes for every recipient, so an event is framed once and the
/// same buffer is written to each connection as a single iovec.
package enum WebSocketWireFrame {
    package static func encode(opcode: WebSocketOpcode, payload: some Collection<UInt8>) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.count + 10)
        writeHeader(opcode: opcode, length: payload.count, into: &buffer)
        buffer.writeBytes(payload)
        return buffer
    }

    package static func encode(opcode: WebSocketOpcode, payload: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.readableBytes + 10)
        writeHeader(opcode: opcode, length: payload.readableBytes, into: &buffer)
        var payload = payload
        buffer.writeBuffer(&payload)
        return buffer
    }

    package static func close(code: WebSocketErrorCode, reason: String) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.write(webSocketErrorCode: code)
        // Control frames carry at most 125 bytes; cut on a character boundary, since a
        // reason that is not UTF-8 is itself a protocol error.
        var cut = reason.utf8.count
        if cut > 123 {
            cut = 0
            for character in reason {
                let next = cut + character.utf8.count
                guard next <= 123 else { break }
                cut = next
            }
        }
        payload.writeBytes(reason.utf8.prefix(cut))
        return encode(opcode: .connectionClose, payload: payload)
    }

    static func writeHeader(opcode: WebSocketOpcode, length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0x80) | UInt8(webSocketOpcode: opcode))
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }
}

/// Events framed as WebSocket text frames, once per event.
package struct WebSocketTextFrames: FrameEncoding {
    package init() {}

    package func frame(_ json: [UInt8]) -> ByteBuffer {
        WebSocketWireFrame.encode(opcode: .text, payload: json)
    }

    /// Header, envelope head and tail written straight into one buffer. Every delivering
    /// node frames each event this way: the tail (`,"cursor":"<ms>-<seq>"}`) is written
    /// from the cursor's two numbers, which fit in small (inline) strings, with no array or
    /// interpolated string in between.
    package func frame(_ event: RoutedEvent, cursor: EventCursor?) -> ByteBuffer {
        let milliseconds = cursor.map { String($0.milliseconds) } ?? ""
        let sequence = cursor.map { String($0.sequence) } ?? ""
        let tailLength =
            cursor == nil
            ? 1 : Self.cursorMember.utf8CodeUnitCount + milliseconds.utf8.count + 1 + sequence.utf8.count + 2
        let length = event.envelopeHead.readableBytes + tailLength
        var buffer = ByteBuffer()
        buffer.reserveCapacity(length + 10)
        WebSocketWireFrame.writeHeader(opcode: .text, length: length, into: &buffer)
        buffer.writeImmutableBuffer(event.envelopeHead)
        if cursor != nil {
            buffer.writeStaticString(Self.cursorMember)
            buffer.writeString(milliseconds)
            buffer.writeStaticString("-")
            buffer.writeString(sequence)
            buffer.writeStaticString("\"}")
        } else {
            buffer.writeStaticString("}")
        }
        return buffer
    }

    private static let cursorMember: StaticString = #","cursor":""#
}
