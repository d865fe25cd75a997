import AiravataCore
import AiravataProtocol
import NIOCore

@testable import AiravataClusterWire

/// An event as another node put it on the Redis bus, or a whole v2 bus message; a node
/// trusts no byte of either.
///
/// Invariants: a v1 event that decodes encodes to bytes that decode to the same event, and
/// encoding it again gives the same bytes; its v2 encoding decodes to the same routing,
/// acceptance time and client message. Whatever decodes as v2 has a UTF-8 envelope head.
/// A v2 message's records lie inside the message, in order, without overlap. A v3 header
/// that reads announces at least one event and cursors within the sequence's range; a v3
/// body that reads as a block has exactly the records announced, with consecutive cursors
/// from the block's id, and re-encodes to the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzEventWireFormat(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    checkRecords(input)
    checkBlock(input)
    if let routed = EventWireFormat.decode(ByteBuffer(bytes: input)) {
        invariant(UTF8Validation.isValid(routed.envelopeHead.readableBytesView), "non-UTF-8 head from \(text(input))")
    }
    guard let event = EventWireFormat.decodeV1(input) else { return 0 }
    invariant(event.routing.category == event.type.category, "routing category differs for \(text(input))")
    let encoded = EventWireFormat.encodeV1(event)
    guard let decoded = EventWireFormat.decodeV1(encoded) else {
        fatalError("the encoding \(text(encoded)) of \(text(input)) does not decode")
    }
    invariant(decoded == event, "encode → decode changed the event: \(text(encoded)) from \(text(input))")
    let reencoded = EventWireFormat.encodeV1(decoded)
    invariant(reencoded == encoded, "encoding is not stable: \(text(encoded)) then \(text(reencoded))")
    let v2 = EventWireFormat.encodeV2(event)
    guard let routed = EventWireFormat.decode(ByteBuffer(bytes: v2)) else {
        fatalError("the v2 encoding \(text(v2)) of \(text(input)) does not decode")
    }
    let expected = event.routed
    invariant(
        routed.routing == expected.routing && routed.acceptedAtMicros == expected.acceptedAtMicros
            && routed.envelopeHead == expected.envelopeHead,
        "v2 changed the event: \(text(v2)) from \(text(input))")
    return 0
}

private func checkRecords(_ input: [UInt8]) {
    let message = ByteBuffer(bytes: input)
    guard let records = BusMessage.records(in: message) else { return }
    var bodies = 0
    for (_, body) in records { bodies += body.readableBytes }
    invariant(bodies < input.count, "record bodies exceed their message: \(text(input))")
}

private func checkBlock(_ input: [UInt8]) {
    let message = ByteBuffer(bytes: input)
    if let header = BusMessage.blockHeader(message) {
        invariant(
            header.count >= 1 && header.first.sequence <= UInt64.max - UInt64(header.count - 1),
            "header announces an impossible block: \(text(input))")
    }
    // The first bytes pick the count, so that inputs reach counts other than 1.
    let count = max(1, Int(input.first ?? 1) % 8)
    let first = EventCursor(milliseconds: 1_764_950_400_000, sequence: 9)
    guard let records = BusMessage.blockRecords(in: message, first: first, count: count) else { return }
    invariant(records.count == count, "\(records.count) records for \(count): \(text(input))")
    invariant(records.first?.0 == first, "the first record's cursor is not the block's id: \(text(input))")
    for (earlier, later) in zip(records, records.dropFirst()) {
        invariant(later.0.sequence == earlier.0.sequence + 1, "cursors not consecutive: \(text(input))")
    }
    let bodies = records.map { Array($0.1.readableBytesView) }
    invariant(BusMessage.blockBody(bodies) == input, "a block does not re-encode to its bytes: \(text(input))")
}
