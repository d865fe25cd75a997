import AiravataServerFastHead

/// The head of a WebSocket handshake as `IngestFastPath` reads it, before NIO's parser would.
///
/// Invariants: an accepted head lies within the input and within the bound, opens with
/// `GET /ws`, has a target of RFC 3986 characters followed by ` HTTP/1.1` and CR LF, and ends
/// with the blank line; every byte of it is visible ASCII, a space, a tab, or a CR LF line
/// end; its headers are in order, each a name of token characters with its colon and a value
/// on the same line that starts with no blank; none says `content-length` or
/// `transfer-encoding`; reading the head alone gives the same head; every shorter prefix of it
/// reads as incomplete; and anything past the head never changes it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzFastUpgradeHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard case .head(let head) = FastUpgradeHead.parse(bytes) else { return 0 }
    let opening = FastUpgradeHead.opening
    invariant(head.length <= size && head.length <= FastUpgradeHead.maxHeadBytes, "head of \(head.length) in \(size)")
    invariant(bytes.prefix(opening.count).elementsEqual(opening), "another opening: \(text(bytes.prefix(64)))")
    invariant(bytes[head.length - 4..<head.length].elementsEqual([13, 10, 13, 10]), "no blank line at the end")
    invariant(head.target.lowerBound == 4 && head.target.count >= 3, "target at \(head.target)")
    let afterTarget = head.target.upperBound..<head.target.upperBound + FastUpgradeHead.version.count
    invariant(bytes[afterTarget].elementsEqual(FastUpgradeHead.version), "no HTTP/1.1 after the target")
    invariant(!bytes[head.target].contains(32), "a space in the target")
    invariant(head.headers.count <= FastUpgradeHead.maxHeaders, "\(head.headers.count) headers")
    var previous = afterTarget.upperBound
    for (name, value) in head.headers {
        invariant(name.lowerBound == previous && !name.isEmpty, "header name at \(name), after \(previous)")
        invariant(bytes[name.upperBound] == UInt8(ascii: ":"), "no colon after the name at \(name)")
        invariant(value.lowerBound > name.upperBound && value.upperBound <= head.length - 4, "value at \(value)")
        invariant(!bytes[name.upperBound..<value.upperBound].contains(13), "a line end inside \(name)")
        if let first = value.first { invariant(bytes[first] != 32 && bytes[first] != 9, "a blank before a value") }
        invariant(bytes[value.upperBound] == 13 && bytes[value.upperBound + 1] == 10, "the value does not end its line")
        let lowered = String(decoding: bytes[name], as: UTF8.self).lowercased()
        invariant(lowered != "content-length" && lowered != "transfer-encoding", "a head with a body: \(lowered)")
        previous = value.upperBound + 2
    }
    invariant(previous == head.length - 2, "bytes between the last header and the blank line")
    invariantHeadBytes(
        bytes, length: head.length, cuts: [0, 1, opening.count],
        sameAlone: { FastUpgradeHead.parse($0) == .head(head) },
        incomplete: { FastUpgradeHead.parse($0) == .incomplete })
    return 0
}
