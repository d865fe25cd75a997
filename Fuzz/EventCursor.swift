import AiravataCore

/// The resume cursor a reconnecting client hands back (`?cursor=` or a stored session).
///
/// Invariants: accepted text is `[±]digits-[±]digits` (Swift's integer syntax, so `+7`
/// and `-0` are read too), each number of at most 20 bytes;
/// a cursor prints as text that parses back to it; canonical text (no sign, no leading
/// zero) prints back byte for byte; and the printed form of any cursor, up to
/// `UInt64.max`, is accepted. Reading the same input as bytes gives the same cursor.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzEventCursor(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: input, as: UTF8.self)
    // The bus reads cursors from bytes: the same answer as from text, for any bytes.
    let fromBytes = EventCursor(bytes: input)
    if String(validating: input, as: UTF8.self) != nil {
        invariant(fromBytes == EventCursor(text), "bytes and text disagree on \(text.debugDescription)")
    } else {
        invariant(fromBytes == nil, "accepted bytes that are not UTF-8: \(Array(input))")
    }
    if let cursor = EventCursor(text) {
        invariant(isCursorShaped(Array(text.utf8)), "accepted \(text.debugDescription)")
        invariant(EventCursor(cursor.description) == cursor, "\(cursor) does not parse back")
        if isCanonical(Array(text.utf8)) {
            invariant(cursor.description == text, "canonical \(text.debugDescription) printed as \(cursor)")
        }
    }
    if size >= 16 {
        let raw = UnsafeRawBufferPointer(start: data, count: 16)
        let made = EventCursor(
            milliseconds: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
            sequence: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        )
        invariant(EventCursor(made.description) == made, "the printed \(made) is not accepted")
    }
    return 0
}

private func isCursorShaped(_ bytes: [UInt8]) -> Bool {
    let parts = bytes.split(separator: UInt8(ascii: "-"), maxSplits: 1, omittingEmptySubsequences: false)
    return parts.count == 2
        && parts.allSatisfy { part in
            let signed = part.first == UInt8(ascii: "+") || part.first == UInt8(ascii: "-")
            let digits = signed ? part.dropFirst() : part[...]
            return part.count <= 20 && !digits.isEmpty && digits.allSatisfy { (0x30...0x39).contains($0) }
        }
}

private func isCanonical(_ bytes: [UInt8]) -> Bool {
    bytes.split(separator: UInt8(ascii: "-"), maxSplits: 1, omittingEmptySubsequences: false).allSatisfy { part in
        part.first != UInt8(ascii: "+") && part.first != UInt8(ascii: "-")
            && (part.count == 1 || part.first != UInt8(ascii: "0"))
    }
}
