/// Stops the run when a property of the parser does not hold. The trap makes libFuzzer
/// save the input as `crash-…`, exactly as for a crash inside the parser.
func invariant(
    _ holds: @autoclosure () -> Bool,
    _ message: @autoclosure () -> String,
    file: StaticString = #fileID,
    line: UInt = #line
) {
    if !holds() { fatalError("invariant broken: \(message())", file: file, line: line) }
}

/// Bytes as text for a failure message, with invalid UTF-8 replaced.
func text(_ bytes: some Sequence<UInt8>) -> String {
    String(decoding: Array(bytes), as: UTF8.self).debugDescription
}
