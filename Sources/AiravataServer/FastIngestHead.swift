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
        let count = min(bytes.count, requestLine.count)
        guard bytes.prefix(count).elementsEqual(requestLine.prefix(count)) else { return false }
        return count == requestLine.count ? true : nil
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
            guard index + 1 < count else { return wanting }
            if bytes[index] == cr {
                guard bytes[index + 1] == lf, let contentLength else { return .unusual }
                return .head(
                    FastIngestHead(length: index + 2, contentLength: contentLength, authorization: authorization))
            }
            headers += 1
            guard headers <= maxHeaders else { return .unusual }
            let nameStart = index
            while index < count, isTokenByte(bytes[index]) { index += 1 }
            guard index < count else { return wanting }
            guard index > nameStart, bytes[index] == UInt8(ascii: ":") else { return .unusual }
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<index])
            let nameEnd = index
            index += 1
            while index < count, isBlank(bytes[index]) { index += 1 }
            let valueStart = index
            while index < count, isValueByte(bytes[index]) { index += 1 }
            guard index + 1 < count else { return wanting }
            guard bytes[index] == cr, bytes[index + 1] == lf else { return .unusual }
            var valueEnd = index
            while valueEnd > valueStart, isBlank(bytes[valueEnd - 1]) { valueEnd -= 1 }
            index += 2
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            if equalsIgnoringCase(name, "content-length") {
                // llhttp takes no tab around the digits (a space, yes).
                let raw = UnsafeRawBufferPointer(rebasing: bytes[nameEnd + 1..<index - 2])
                guard contentLength == nil, !raw.contains(UInt8(ascii: "\t")), let length = decimal(value) else {
                    return .unusual
                }
                contentLength = length
            } else if equalsIgnoringCase(name, "authorization") {
                guard authorization == nil else { return .unusual }
                authorization = valueStart..<valueEnd
            } else if equalsIgnoringCase(name, "connection") {
                guard equalsIgnoringCase(value, "keep-alive") else { return .unusual }
            } else if equalsIgnoringCase(name, "transfer-encoding") || equalsIgnoringCase(name, "expect")
                || equalsIgnoringCase(name, "upgrade") || equalsIgnoringCase(name, "te")
                || equalsIgnoringCase(name, "proxy-connection")
            {
                return .unusual
            }
        }
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// RFC 9110 §5.6.2 tchar.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Visible ASCII, spaces and tabs: no control byte, no byte above 0x7E.
    private static func isValueByte(_ byte: UInt8) -> Bool {
        (0x21...0x7E).contains(byte) || isBlank(byte)
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

    /// ASCII case-insensitive, against a lowercase name.
    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        let lower = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        for (byte, expected) in zip(bytes, lower) {
            let folded = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
            guard folded == expected else { return false }
        }
        return true
    }
}
