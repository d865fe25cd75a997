import AiravataCore
import AiravataProtocol

@testable import AiravataCluster

/// An event as another node put it on the Redis bus; a node trusts no byte of it.
///
/// Invariants: whatever decodes encodes to bytes that decode to the same event, and
/// encoding that event again gives the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzEventWireFormat(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    guard let event = EventWireFormat.decode(input) else { return 0 }
    invariant(event.routing.category == event.type.category, "routing category differs for \(text(input))")
    let encoded = EventWireFormat.encode(event)
    guard let decoded = EventWireFormat.decode(encoded) else {
        fatalError("the encoding \(text(encoded)) of \(text(input)) does not decode")
    }
    invariant(decoded == event, "encode → decode changed the event: \(text(encoded)) from \(text(input))")
    let reencoded = EventWireFormat.encode(decoded)
    invariant(reencoded == encoded, "encoding is not stable: \(text(encoded)) then \(text(reencoded))")
    return 0
}
