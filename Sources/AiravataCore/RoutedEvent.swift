import AiravataProtocol
package import NIOCore

/// An accepted event as every node routes it: where it goes, and its client message
/// encoded once, by the node that accepted it, without the cursor that the log assigns
/// later. A node that delivers it appends the cursor; it never decodes the JSON.
package struct RoutedEvent: Sendable {
    package var routing: EventRouting
    /// Wall-clock microseconds when the ingest node accepted it; for latency figures.
    package var acceptedAtMicros: Int64
    /// The envelope's JSON up to, not including, the cursor member and the closing brace:
    /// `{"type":…,"id":…,"timestamp":…,"data":…`.
    package var envelopeHead: ByteBuffer

    package init(routing: EventRouting, acceptedAtMicros: Int64, envelopeHead: ByteBuffer) {
        self.routing = routing
        self.acceptedAtMicros = acceptedAtMicros
        self.envelopeHead = envelopeHead
    }

    /// The client message with its cursor: the head, the cursor member, the closing brace.
    package func message(cursor: EventCursor?) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(envelopeHead.readableBytes + 40)
        bytes.append(contentsOf: envelopeHead.readableBytesView)
        Self.appendTail(cursor: cursor, to: &bytes)
        return bytes
    }

    /// `,"cursor":"…"}`, or `}` without a cursor. Cursors need no JSON escaping.
    package static func appendTail(cursor: EventCursor?, to bytes: inout [UInt8]) {
        if let cursor {
            bytes.append(contentsOf: #","cursor":""#.utf8)
            bytes.append(contentsOf: cursor.description.utf8)
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
    }
}

extension GatewayEvent {
    /// Encodes the client message once, for routing on every node.
    package var routed: RoutedEvent {
        var head: [UInt8] = []
        head.reserveCapacity(128 + (dataBytes?.count ?? 256))
        writeEnvelopeHead(into: &head)
        return RoutedEvent(routing: routing, acceptedAtMicros: acceptedAtMicros, envelopeHead: ByteBuffer(bytes: head))
    }
}

/// An event as the bus hands it back: with the cursor the log assigned.
package struct DeliveredEvent: Sendable {
    package var event: RoutedEvent
    package var cursor: EventCursor?

    package init(event: RoutedEvent, cursor: EventCursor?) {
        self.event = event
        self.cursor = cursor
    }
}
