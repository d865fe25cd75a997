package import AiravataCore
package import NIOCore

/// A v2 pub/sub message: the events of one publish script call, each as
/// `<cursor> <body length>\n<body>`, back to back (docs/architecture.md, "The bus message").
package enum BusMessage {
    /// The longest body a record may announce: an ingestion request's largest event, with
    /// room for its header.
    static let maxBodyBytes = 16 << 20

    /// The records, bodies as slices of `message` (no copy); nil when any part is malformed,
    /// since after a bad record nothing tells where the next one starts.
    package static func records(in message: ByteBuffer) -> [(EventCursor, ByteBuffer)]? {
        var records: [(EventCursor, ByteBuffer)] = []
        var message = message
        while message.readableBytes > 0 {
            let view = message.readableBytesView
            guard let space = view.prefix(42).firstIndex(of: UInt8(ascii: " ")),
                let cursor = EventCursor(bytes: view[view.startIndex..<space]),
                let newline = view[(space + 1)..<view.endIndex].prefix(10).firstIndex(of: UInt8(ascii: "\n")),
                let length = decimal(view[(space + 1)..<newline]), length <= maxBodyBytes
            else { return nil }
            message.moveReaderIndex(forwardBy: newline - view.startIndex + 1)
            guard let body = message.readSlice(length: length) else { return nil }
            records.append((cursor, body))
        }
        return records.isEmpty ? nil : records
    }

    /// Decimal digits without sign or leading zero.
    private static func decimal(_ digits: ByteBufferView) -> Int? {
        guard !digits.isEmpty, digits.count <= 9, digits.count == 1 || digits.first != UInt8(ascii: "0") else {
            return nil
        }
        var value = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }
}
