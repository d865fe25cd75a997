package import AiravataCore
package import NIOCore

/// A v2 pub/sub message: the events of one publish script call, each as
/// `<cursor> <body length>\n<body>`, back to back (docs/architecture.md, "The bus message").
package enum BusMessage {
    /// The longest body a record may announce: an ingestion request's largest event, with
    /// room for its header.
    static let maxBodyBytes = 16 << 20
    /// The longest cursor: two 20-digit numbers and a dash.
    private static let maxCursorBytes = 41
    /// The most digits a body length may have.
    private static let maxLengthDigits = 9

    /// The records, bodies as slices of `message` (no copy); nil when any part is malformed,
    /// since after a bad record nothing tells where the next one starts.
    package static func records(in message: ByteBuffer) -> [(EventCursor, ByteBuffer)]? {
        let found = message.withUnsafeReadableBytes { bytes -> [(EventCursor, Int, Int)]? in
            var found: [(EventCursor, Int, Int)] = []
            var position = 0
            while position < bytes.count {
                let space = index(of: UInt8(ascii: " "), in: bytes, from: position, within: maxCursorBytes + 1)
                guard let space,
                    let cursor = EventCursor(bytes: UnsafeRawBufferPointer(rebasing: bytes[position..<space])),
                    let newline = index(
                        of: UInt8(ascii: "\n"), in: bytes, from: space + 1, within: maxLengthDigits + 1),
                    let length = decimal(UnsafeRawBufferPointer(rebasing: bytes[(space + 1)..<newline])),
                    length <= maxBodyBytes, length <= bytes.count - newline - 1
                else { return nil }
                found.append((cursor, newline + 1, length))
                position = newline + 1 + length
            }
            return found
        }
        guard let found, !found.isEmpty else { return nil }
        return found.map { cursor, offset, length in
            // In range: checked against the readable bytes above.
            (cursor, message.getSlice(at: message.readerIndex + offset, length: length)!)
        }
    }

    /// Where `byte` first occurs in `bytes` at or after `start`, looking at most `limit` bytes.
    private static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, within limit: Int)
        -> Int?
    {
        var index = start
        let end = min(bytes.count, start + limit)
        while index < end {
            if bytes[index] == byte { return index }
            index += 1
        }
        return nil
    }

    /// Decimal digits without sign or leading zero.
    private static func decimal(_ digits: UnsafeRawBufferPointer) -> Int? {
        guard !digits.isEmpty, digits.count <= maxLengthDigits, digits.count == 1 || digits[0] != UInt8(ascii: "0")
        else { return nil }
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }
}
