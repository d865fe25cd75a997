package import AiravataProtocol

/// An accepted event on its way through the cluster.
package struct GatewayEvent: Sendable, Equatable {
    package var type: MessageType
    package var id: String
    package var timestamp: String
    package var data: JSONValue
    package var routing: EventRouting
    /// Wall-clock microseconds when the ingest node accepted it; for latency figures.
    package var acceptedAtMicros: Int64

    package init(
        type: MessageType,
        id: String,
        timestamp: String,
        data: JSONValue,
        routing: EventRouting,
        acceptedAtMicros: Int64
    ) {
        self.type = type
        self.id = id
        self.timestamp = timestamp
        self.data = data
        self.routing = routing
        self.acceptedAtMicros = acceptedAtMicros
    }

    /// The client-facing message, with the event's position in the replay log.
    package func envelope(cursor: EventCursor?) -> Envelope {
        var envelope = Envelope(type: type, id: id, timestamp: timestamp, data: data)
        envelope.cursor = cursor?.description
        return envelope
    }
}
