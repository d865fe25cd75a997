package import AiravataProtocol

/// An accepted event on its way through the cluster.
package struct GatewayEvent: Sendable, Equatable {
    /// Events are equal when they say the same, byte for byte: `dataBytes` is how `data` is
    /// written (an escape as the producer chose it), not what it says.
    package static func == (lhs: GatewayEvent, rhs: GatewayEvent) -> Bool {
        lhs.type == rhs.type && lhs.id.hasSameBytes(as: rhs.id) && lhs.timestamp.hasSameBytes(as: rhs.timestamp)
            && lhs.data == rhs.data && lhs.routing == rhs.routing && lhs.acceptedAtMicros == rhs.acceptedAtMicros
    }

    package var type: MessageType
    package var id: String
    package var timestamp: String
    package var data: JSONValue {
        // Bytes written for another `data` would say something else.
        didSet { dataBytes = nil }
    }
    package var routing: EventRouting
    /// Wall-clock microseconds when the ingest node accepted it; for latency figures.
    package var acceptedAtMicros: Int64
    /// `data` as the producer wrote it, when that is compact JSON (the parser checked it and
    /// `data` was read from it): the client message carries these bytes instead of writing
    /// `data` again. Nil for events made here, and for those read from the bus.
    package var dataBytes: [UInt8]?

    package init(
        type: MessageType,
        id: String,
        timestamp: String,
        data: JSONValue,
        routing: EventRouting,
        acceptedAtMicros: Int64,
        dataBytes: [UInt8]? = nil
    ) {
        self.type = type
        self.id = id
        self.timestamp = timestamp
        self.data = data
        self.routing = routing
        self.acceptedAtMicros = acceptedAtMicros
        self.dataBytes = dataBytes
    }

    /// The client-facing message, with the event's position in the replay log.
    package func envelope(cursor: EventCursor?) -> Envelope {
        var envelope = Envelope(type: type, id: id, timestamp: timestamp, data: data)
        envelope.cursor = cursor?.description
        return envelope
    }

    /// The client message without its cursor and closing brace,
    /// `{"type":…,"id":…,"timestamp":…,"data":…`, as every node routes it
    /// (`RoutedEvent.envelopeHead`).
    package func writeEnvelopeHead(into bytes: inout [UInt8]) {
        guard let dataBytes else {
            envelope(cursor: nil).encode(into: &bytes)
            bytes.removeLast()
            return
        }
        // The same fields in the same order as `Envelope.encode`, `data` copied.
        Envelope(type: type, id: id, timestamp: timestamp).encode(into: &bytes)
        bytes.removeLast()
        bytes.append(contentsOf: #","data":"#.utf8)
        bytes.append(contentsOf: dataBytes)
    }
}
