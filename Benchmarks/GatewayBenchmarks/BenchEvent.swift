import AiravataCore
import AiravataProtocol
import Foundation

/// The event of the load benchmarks (`bench/gateway-task-updated.json`, a `task_updated`
/// routed to one project), at each stage of its way through a node. The template is filled in
/// the way `../shared/bench/loadgen.py` fills it: `{channel}` becomes a project id and
/// `__LG__` the load tool's latency marker (`LG1|<sequence>|<monotonic ns>|`), here of the
/// length that makes the delivered message 446 bytes, the size docs/performance.md reports.
enum BenchEvent {
    static let projectID = "lg1a2b3c4d5_0"
    static let marker = "LG1|100|1080000000000|"
    /// A fixed instant (2026-11-26), so that ids, timestamps and sizes are the same each run.
    static let acceptedAtMicros: Int64 = 1_795_713_253_458_000

    /// The request body as the producer posts it.
    static let body: [UInt8] = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let file = root.appendingPathComponent("bench/gateway-task-updated.json")
        guard let template = try? String(contentsOf: file, encoding: .utf8) else {
            fatalError("cannot read the benchmark event at \(file.path)")
        }
        let text = template.replacingOccurrences(of: "{channel}", with: projectID)
            .replacingOccurrences(of: "__LG__", with: marker)
        return Array(text.utf8)
    }()

    /// The body parsed, as ingestion hands it to the validator.
    static let document: JSONValue = {
        do {
            return try JSONValue(parsing: body)
        } catch {
            fatalError("the benchmark event does not parse: \(error)")
        }
    }()

    /// The event as ingestion completes it: a generated id and timestamp, routing from the body.
    static let event: GatewayEvent = {
        let candidates: [EventValidator.Candidate]
        do {
            candidates = try EventValidator().validate(document)
        } catch {
            fatalError("the benchmark event is refused: \(error)")
        }
        guard candidates.count == 1, let candidate = candidates.first else {
            fatalError("the benchmark event should be one event, not \(candidates.count)")
        }
        return GatewayEvent(
            type: candidate.type,
            id: EventIDGenerator().id(for: candidate.type, routing: candidate.routing, nowMicros: acceptedAtMicros),
            timestamp: Timestamp.iso8601(unixSeconds: acceptedAtMicros / 1_000_000),
            data: candidate.data,
            routing: candidate.routing,
            acceptedAtMicros: acceptedAtMicros
        )
    }()

    /// The same with its `data` as the producer wrote it (`JSONValue.parsingEvents`), as
    /// ingestion now completes it: the bus message copies those bytes instead of writing `data`.
    static let eventAsWritten: GatewayEvent = {
        let spans: [Range<Int>?]
        do {
            spans = try body.withUnsafeBufferPointer { try JSONValue.parsingEvents($0).dataSpans }
        } catch {
            fatalError("the benchmark event does not parse: \(error)")
        }
        guard spans.count == 1, let span = spans[0] else {
            fatalError("the benchmark event's data is not compact")
        }
        var written = event
        written.dataBytes = Array(body[span])
        return written
    }()

    /// As the embedded bus hands it back to the gateway.
    static let delivered = DeliveredEvent(
        event: event.routed,
        cursor: EventCursor(milliseconds: UInt64(acceptedAtMicros / 1000), sequence: 1000)
    )

    /// The client-facing message.
    static let envelope = event.envelope(cursor: delivered.cursor)

    /// The JSON text every recipient gets, the payload of the WebSocket frame.
    static let wire: [UInt8] = envelope.encoded()

    /// The event's `data` as written inside the envelope.
    static let data: [UInt8] = {
        var bytes: [UInt8] = []
        event.data.write(into: &bytes)
        return bytes
    }()
}
