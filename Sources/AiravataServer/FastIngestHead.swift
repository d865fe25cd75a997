#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The head of the one request `IngestFastPath` answers, in its plainest form only:
/// `POST /api/v1/events HTTP/1.1`, CRLF line ends, header names of token characters, values
/// of visible ASCII, spaces and tabs, one `content-length` of digits, at most one
/// `authorization`, `connection` absent or `keep-alive`, and no `transfer-encoding`,
/// `expect`, `upgrade`, `te` or `proxy-connection` (which llhttp reads as `connection`). Whatever else a request holds makes it `unusual`: NIO's
/// parser then reads it, so this one never needs to agree with it on anything but the
/// plainest requests.
package struct FastIngestHead: Equatable, Sendable {
    /// Bytes up to and including the blank line.
    package var length: Int
    package var contentLength: Int
    /// Where the authorization header's value lies in the head, without surrounding blanks.
    package var authorization: Range<Int>?

    package enum Outcome: Equatable, Sendable {
        /// The bytes so far may still become such a head.
        case incomplete
        /// Not such a head (NIO's parser reads it).
        case unusual
        case head(FastIngestHead)
    }

    package static let requestLine = Array("POST /api/v1/events HTTP/1.1\r\n".utf8)
    /// Longer heads are read by NIO's parser (whose own bound then applies).
    package static let maxHeadBytes = 16 << 10
    package static let maxHeaders = 64

    /// Whether a connection's first bytes open the one request answered here; nil while
    /// they are fewer than the request line and agree with it so far.
    package static func opensAsExpected(_ bytes: UnsafeRawBufferPointer) -> Bool? {
        HTTPHeadBytes.opens(bytes, with: requestLine)
    }

    package static func parse(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard let opens = opensAsExpected(bytes) else { return .incomplete }
        guard opens else { return .unusual }
        let count = bytes.count
        // Incomplete unless the head is already longer than any accepted here.
        let wanting: Outcome = count >= maxHeadBytes ? .unusual : .incomplete
        var index = requestLine.count
        var contentLength: Int?
        var authorization: Range<Int>?
        var headers = 0
        while true {
            guard index < maxHeadBytes else { return .unusual }
            let nameRange: Range<Int>
            let valueRange: Range<Int>
            let colon: Int
            switch HTTPHeadBytes.line(bytes, at: &index) {
            case .incomplete: return wanting
            case .unusual: return .unusual
            case .end:
                guard let contentLength else { return .unusual }
                return .head(FastIngestHead(length: index, contentLength: contentLength, authorization: authorization))
            case .header(let name, let value, let at):
                (nameRange, valueRange, colon) = (name, HTTPHeadBytes.trimmed(value, in: bytes), at)
            }
            headers += 1
            guard headers <= maxHeaders else { return .unusual }
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameRange])
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueRange])
            if HTTPHeadBytes.equalsIgnoringCase(name, "content-length") {
                // llhttp takes no tab around the digits (a space, yes).
                let raw = UnsafeRawBufferPointer(rebasing: bytes[colon + 1..<index - 2])
                guard contentLength == nil, !raw.contains(UInt8(ascii: "\t")), let length = decimal(value) else {
                    return .unusual
                }
                contentLength = length
            } else if HTTPHeadBytes.equalsIgnoringCase(name, "authorization") {
                guard authorization == nil else { return .unusual }
                authorization = valueRange
            } else if HTTPHeadBytes.equalsIgnoringCase(name, "connection") {
                guard HTTPHeadBytes.equalsIgnoringCase(value, "keep-alive") else { return .unusual }
            } else if HTTPHeadBytes.equalsIgnoringCase(name, "transfer-encoding")
                || HTTPHeadBytes.equalsIgnoringCase(name, "expect") || HTTPHeadBytes.equalsIgnoringCase(name, "upgrade")
                || HTTPHeadBytes.equalsIgnoringCase(name, "te")
                || HTTPHeadBytes.equalsIgnoringCase(name, "proxy-connection")
            {
                return .unusual
            }
        }
    }

    /// One to nine digits.
    private static func decimal(_ digits: UnsafeRawBufferPointer) -> Int? {
        guard (1...9).contains(digits.count) else { return nil }
        var value = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }
}

/// Byte classes and comparisons shared by the fast paths' head parsers (`FastIngestHead`,
/// `FastUpgradeHead`).
enum HTTPHeadBytes {
    /// Whether `bytes` open with `expected`; nil while they are fewer and agree so far.
    static func opens(_ bytes: UnsafeRawBufferPointer, with expected: [UInt8]) -> Bool? {
        let count = min(bytes.count, expected.count)
        guard bytesEqual(UnsafeRawBufferPointer(rebasing: bytes.prefix(count)), expected, count: count) else {
            return false
        }
        return count == expected.count ? true : nil
    }

    /// Whether the first `count` bytes of each are the same (`count` within both), compared
    /// as memory: the generic `elementsEqual` goes a byte at a time through iterators.
    static func bytesEqual(_ bytes: UnsafeRawBufferPointer, _ expected: [UInt8], count: Int) -> Bool {
        precondition(count >= 0 && count <= bytes.count && count <= expected.count)
        guard count > 0 else { return true }
        return expected.withUnsafeBytes { memcmp(bytes.baseAddress!, $0.baseAddress!, count) == 0 }
    }

    enum Line: Equatable {
        /// The bytes end before the line does.
        case incomplete
        /// Not a line these parsers read (NIO's parser does).
        case unusual
        /// The blank line that ends the head.
        case end
        /// `name: value`, the value without the blanks before it but with those after it, as
        /// NIO's parser gives it; `colon` is where the colon is.
        case header(name: Range<Int>, value: Range<Int>, colon: Int)
    }

    /// Reads the line at `index` in its plainest form (a name of token characters, a colon,
    /// a value of visible ASCII, spaces and tabs, CR LF), and moves `index` past it.
    static func line(_ bytes: UnsafeRawBufferPointer, at index: inout Int) -> Line {
        let count = bytes.count
        var next = index
        guard next + 1 < count else { return .incomplete }
        if bytes[next] == cr {
            guard bytes[next + 1] == lf else { return .unusual }
            index = next + 2
            return .end
        }
        let nameStart = next
        while next < count, isTokenByte(bytes[next]) { next += 1 }
        guard next < count else { return .incomplete }
        guard next > nameStart, bytes[next] == UInt8(ascii: ":") else { return .unusual }
        let colon = next
        next += 1
        while next < count, isBlank(bytes[next]) { next += 1 }
        let valueStart = next
        while next < count, isValueByte(bytes[next]) { next += 1 }
        guard next + 1 < count else { return .incomplete }
        guard bytes[next] == cr, bytes[next + 1] == lf else { return .unusual }
        index = next + 2
        return .header(name: nameStart..<colon, value: valueStart..<next, colon: colon)
    }

    /// `range` without the blanks at its end.
    static func trimmed(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer) -> Range<Int> {
        var end = range.upperBound
        while end > range.lowerBound, isBlank(bytes[end - 1]) { end -= 1 }
        return range.lowerBound..<end
    }

    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")

    static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// RFC 9110 §5.6.2 tchar.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        // Listed rather than looked up in a string: the search over a string's bytes was
        // slower than the rest of the head parser together.
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// Visible ASCII, spaces and tabs: no control byte, no byte above 0x7E.
    static func isValueByte(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || isBlank(byte)
    }

    /// ASCII case-insensitive, against a lowercase name.
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        let lower = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        for (byte, expected) in zip(bytes, lower) {
            let folded = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
            guard folded == expected else { return false }
        }
        return true
    }
}
