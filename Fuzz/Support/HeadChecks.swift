/// Checks shared by the fuzz targets of the fast paths' head parsers: an accepted head of
/// `length` bytes holds only visible ASCII, spaces, tabs and CR LF line ends; the head alone
/// reads the same (`sameAlone`); and every prefix cut at `cuts` (or at its middle and last two
/// bytes) reads as incomplete (`incomplete`).
func invariantHeadBytes(
    _ bytes: UnsafeRawBufferPointer, length: Int, cuts: [Int],
    sameAlone: (UnsafeRawBufferPointer) -> Bool, incomplete: (UnsafeRawBufferPointer) -> Bool
) {
    var index = 0
    while index < length {
        let byte = bytes[index]
        if byte == 13 {
            invariant(index + 1 < length && bytes[index + 1] == 10, "a CR without LF at \(index)")
            index += 2
            continue
        }
        invariant((0x20...0x7E).contains(byte) || byte == 9, "byte \(byte) at \(index) of an accepted head")
        index += 1
    }
    invariant(sameAlone(UnsafeRawBufferPointer(rebasing: bytes[0..<length])), "the head alone reads otherwise")
    for cut in cuts + [length / 2, length - 2, length - 1] where cut >= 0 && cut < length {
        let part = UnsafeRawBufferPointer(rebasing: bytes[0..<cut])
        invariant(incomplete(part), "a prefix of \(cut) bytes is not incomplete")
    }
}
