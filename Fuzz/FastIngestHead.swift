import AiravataServerFastHead

/// The head of a producer's POST as `IngestFastPath` reads it, before NIO's parser would.
///
/// Invariants: an accepted head lies within the input, opens with the one request line
/// and ends with the blank line; its content length has at most nine digits and its
/// authorization value lies inside it, without surrounding blanks; every byte of it is a
/// visible ASCII byte, a space, a tab, or a CR LF line end; reading the head alone gives the
/// same head; every shorter prefix of it reads as incomplete (the parser never decides on a
/// part of a head); and anything past the head never changes it.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzFastIngestHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard case .head(let head) = FastIngestHead.parse(bytes) else { return 0 }
    let line = FastIngestHead.requestLine
    invariant(head.length <= size && head.length >= line.count + 2, "head of \(head.length) bytes in \(size)")
    invariant(bytes.prefix(line.count).elementsEqual(line), "another request line: \(text(bytes.prefix(64)))")
    invariant(bytes[head.length - 4..<head.length].elementsEqual([13, 10, 13, 10]), "no blank line at the end")
    invariant((0...999_999_999).contains(head.contentLength), "content length \(head.contentLength)")
    if let authorization = head.authorization {
        invariant(
            authorization.lowerBound >= line.count && authorization.upperBound <= head.length - 4,
            "authorization outside")
        if let first = authorization.first, let last = authorization.last {
            invariant(bytes[first] != 32 && bytes[first] != 9 && bytes[last] != 32 && bytes[last] != 9, "blanks kept")
        }
    }
    invariantHeadBytes(
        bytes, length: head.length, cuts: [0, 1, line.count],
        sameAlone: { FastIngestHead.parse($0) == .head(head) }, incomplete: { FastIngestHead.parse($0) == .incomplete })
    return 0
}
