package import AiravataCore
package import NIOCore

/// The bus messages that carry several events (docs/architecture.md, "The bus message").
///
/// A v2 message holds the events of one publish script call, each as
/// `<cursor> <body length>\n<body>`, back to back. A v3 call sends two messages: a header
/// (`blockHeader`), then the block body exactly as the publishing node built it
/// (`blockRecords`), which is also what the replay log keeps for the block.
package enum BusMessage {
    /// What a v3 header announces: the block's first cursor, how many events it holds, and
    /// the length of the body message that follows it.
    package struct BlockHeader: Sendable, Equatable {
        package var first: EventCursor
        package var count: Int
        package var bytes: Int
    }

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

    // MARK: v3 blocks

    /// The most events one block may announce: a node never puts more in one script call
    /// than one ingestion request may hold, and far fewer under load.
    package static let maxBlockEvents = 100_000

    /// A v3 block header, `<first cursor> <event count> <body bytes>` with no line feed: the
    /// first of the two messages a v3 publish call sends. Nil when malformed.
    package static func blockHeader(_ message: ByteBuffer) -> BlockHeader? {
        message.withUnsafeReadableBytes { bytes -> BlockHeader? in
            guard bytes.count <= maxCursorBytes + 2 * (maxLengthDigits + 1),
                let first = index(of: UInt8(ascii: " "), in: bytes, from: 0, within: maxCursorBytes + 1),
                let cursor = EventCursor(bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<first])),
                let second = index(of: UInt8(ascii: " "), in: bytes, from: first + 1, within: maxLengthDigits + 1),
                let count = decimal(UnsafeRawBufferPointer(rebasing: bytes[(first + 1)..<second])),
                let length = decimal(UnsafeRawBufferPointer(rebasing: bytes[(second + 1)...])),
                fits(count, after: cursor)
            else { return nil }
            return BlockHeader(first: cursor, count: count, bytes: length)
        }
    }

    /// Whether a block of `count` events may start at `first`: 1…`maxBlockEvents` of them,
    /// and their cursors, one apart, within the sequence's range.
    package static func fits(_ count: Int, after first: EventCursor) -> Bool {
        count >= 1 && count <= maxBlockEvents && first.sequence <= UInt64.max - UInt64(count - 1)
    }

    /// A v3 block's events with their cursors: the body holds `count` records
    /// `<body length>\n<body>` back to back and nothing else, and the events' cursors run
    /// from `first` (the block's log entry id) in steps of one. Bodies are slices of `body`
    /// (no copy); nil when anything is malformed or the count differs.
    package static func blockRecords(in body: ByteBuffer, first: EventCursor, count: Int)
        -> [(EventCursor, ByteBuffer)]?
    {
        guard fits(count, after: first) else { return nil }
        let found = body.withUnsafeReadableBytes { bytes -> [(Int, Int)]? in
            var found: [(Int, Int)] = []
            found.reserveCapacity(count)
            var position = 0
            while position < bytes.count {
                guard found.count < count,
                    let newline = index(of: UInt8(ascii: "\n"), in: bytes, from: position, within: maxLengthDigits + 1),
                    let length = decimal(UnsafeRawBufferPointer(rebasing: bytes[position..<newline])),
                    length <= maxBodyBytes, length <= bytes.count - newline - 1
                else { return nil }
                found.append((newline + 1, length))
                position = newline + 1 + length
            }
            return found.count == count ? found : nil
        }
        guard let found else { return nil }
        return found.enumerated().map { index, record in
            // In range: checked against the readable bytes above.
            (
                EventCursor(milliseconds: first.milliseconds, sequence: first.sequence + UInt64(index)),
                body.getSlice(at: body.readerIndex + record.0, length: record.1)!
            )
        }
    }

    /// The body of a v3 block: each payload as `<length>\n<payload>`, in order.
    package static func blockBody(_ payloads: [[UInt8]]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(payloads.reduce(0) { $0 + $1.count + maxLengthDigits + 1 })
        for payload in payloads {
            body.append(contentsOf: String(payload.count).utf8)
            body.append(UInt8(ascii: "\n"))
            body.append(contentsOf: payload)
        }
        return body
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
