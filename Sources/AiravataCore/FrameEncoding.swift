package import NIOCore

/// How an encoded JSON message becomes the bytes written to every recipient. The server
/// supplies WebSocket framing, so the frame is built once per event, not per connection.
package protocol FrameEncoding: Sendable {
    func frame(_ json: [UInt8]) -> ByteBuffer

    /// An event's frame: its envelope head (`RoutedEvent.envelopeHead`) closed with the cursor.
    func frame(_ event: RoutedEvent, cursor: EventCursor?) -> ByteBuffer
}

extension FrameEncoding {
    package func frame(_ event: RoutedEvent, cursor: EventCursor?) -> ByteBuffer {
        frame(event.message(cursor: cursor))
    }
}

/// The JSON bytes as they are (tests, non-WebSocket sinks).
package struct PlainJSONFrames: FrameEncoding {
    package init() {}

    package func frame(_ json: [UInt8]) -> ByteBuffer {
        ByteBuffer(bytes: json)
    }
}
