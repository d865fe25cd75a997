import AiravataCore
import AiravataProtocol

/// A producer's `POST /api/v1/events` body, after the JSON parser.
///
/// Invariants: a batch is never empty nor over the bound; every candidate is an event type
/// (never a control message), carries the routing ids its category needs, and a timestamp
/// only if it is ISO 8601; a refusal names a message; validating the re-serialised body
/// gives the same candidates.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzEventValidator(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let document = try? JSONValue(parsing: UnsafeBufferPointer(start: data, count: size)) else { return 0 }
    let validator = EventValidator(maximumBatchSize: batchBound)
    let candidates: [EventValidator.Candidate]
    do throws(IngestionError) {
        candidates = try validator.validate(document)
    } catch {
        invariant(!error.message.isEmpty, "a refusal without a message for \(document.jsonString)")
        return 0
    }
    invariant((1...batchBound).contains(candidates.count), "\(candidates.count) candidates from \(document.jsonString)")
    for candidate in candidates {
        check(candidate, document)
    }

    var written: [UInt8] = []
    document.write(into: &written)
    guard let reread = try? JSONValue(parsing: written) else {
        fatalError("the re-serialised body does not parse: \(text(written))")
    }
    let again = Result { () throws(IngestionError) in try validator.validate(reread) }
    invariant(again == .success(candidates), "re-serialised \(text(written)) validated as \(again)")
    return 0
}

/// Small, so that the fuzzer reaches the refusal of an oversized batch.
private let batchBound = 4

private func check(_ candidate: EventValidator.Candidate, _ document: JSONValue) {
    let routing = candidate.routing
    invariant(candidate.type.isEvent, "control type \(candidate.type) accepted from \(document.jsonString)")
    invariant(routing.category == candidate.type.category, "routing category differs in \(document.jsonString)")
    invariant(candidate.data.objectValue != nil, "non-object data accepted from \(document.jsonString)")
    if let timestamp = candidate.timestamp {
        invariant(Timestamp.isValidISO8601(timestamp), "timestamp \(timestamp.debugDescription) accepted")
    }
    for id in [
        candidate.id, routing.experimentID, routing.taskID, routing.workerID, routing.projectID,
        routing.ownerID, routing.userID,
    ].compactMap({ $0 }) {
        invariant(!id.isEmpty, "an empty id accepted from \(document.jsonString)")
    }
    // System events route to everyone and need no id.
    let routingID: String? =
        switch routing.category {
        case .experiment: routing.experimentID
        case .task: routing.taskID
        case .worker: routing.workerID
        case .user: routing.userID
        case .system, .control: ""
        }
    invariant(routingID != nil, "a \(candidate.type) event without its routing id from \(document.jsonString)")
}
