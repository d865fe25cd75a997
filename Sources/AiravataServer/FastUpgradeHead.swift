/// The head of a WebSocket opening handshake as `IngestFastPath` reads it, in its plainest
/// form only: `GET /ws… HTTP/1.1`, a target of RFC 3986 characters, CRLF line ends, header
/// names of token characters, values of visible ASCII, spaces and tabs, and no
/// `content-length` or `transfer-encoding` (a handshake has no body). Whatever else a request
/// holds makes it `unusual`, and NIO's parser reads it. The head carries the byte ranges of
/// its parts; `WebSocketHandshake` checks it as it checks the head NIO's parser makes.
package struct FastUpgradeHead: Equatable, Sendable {
    /// Bytes up to and including the blank line.
    package var length: Int
    /// The request target: the path and the query.
    package var target: Range<Int>
    /// Each header's name and value, in order; the value without the blanks before it but
    /// with those after it, as NIO's parser gives it.
    package var headers: [(name: Range<Int>, value: Range<Int>)]

    package enum Outcome: Equatable, Sendable {
        /// The bytes so far may still become such a head.
        case incomplete
        /// Not such a head (NIO's parser reads it).
        case unusual
        case head(FastUpgradeHead)
    }

    /// Every WebSocket endpoint's request opens so.
    package static let opening = Array("GET /ws".utf8)
    package static let version = Array(" HTTP/1.1\r\n".utf8)
    /// The head is read again at every piece that arrives, so a longer one goes to NIO's
    /// parser (which reads as bytes come) rather than costing the square of its length here.
    /// A browser's handshake with a token in its query is about a kilobyte.
    package static let maxHeadBytes = 4 << 10
    package static let maxHeaders = 64

    /// Whether a connection's first bytes open a WebSocket handshake; nil while they are
    /// fewer than the opening and agree with it so far.
    package static func opensAsExpected(_ bytes: UnsafeRawBufferPointer) -> Bool? {
        HTTPHeadBytes.opens(bytes, with: opening)
    }

    package static func parse(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard let opens = opensAsExpected(bytes) else { return .incomplete }
        guard opens else { return .unusual }
        let count = bytes.count
        // Incomplete unless the head is already longer than any accepted here.
        let wanting: Outcome = count >= maxHeadBytes ? .unusual : .incomplete
        let targetStart = "GET ".utf8.count
        var index = targetStart
        while index < count, isTargetByte(bytes[index]) { index += 1 }
        let target = targetStart..<index
        let versionEnd = index + version.count
        guard versionEnd <= count else {
            let seen = UnsafeRawBufferPointer(rebasing: bytes[index...])
            return seen.elementsEqual(version.prefix(seen.count)) ? wanting : .unusual
        }
        guard UnsafeRawBufferPointer(rebasing: bytes[index..<versionEnd]).elementsEqual(version) else {
            return .unusual
        }
        index = versionEnd
        var headers: [(name: Range<Int>, value: Range<Int>)] = []
        while true {
            guard index < maxHeadBytes else { return .unusual }
            switch HTTPHeadBytes.line(bytes, at: &index) {
            case .incomplete: return wanting
            case .unusual: return .unusual
            case .end:
                guard index <= maxHeadBytes else { return .unusual }
                return .head(FastUpgradeHead(length: index, target: target, headers: headers))
            case .header(let name, let value, _):
                guard headers.count < maxHeaders else { return .unusual }
                let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[name])
                // Either would give the request a body, which NIO's parser then frames.
                if HTTPHeadBytes.equalsIgnoringCase(nameBytes, "content-length")
                    || HTTPHeadBytes.equalsIgnoringCase(nameBytes, "transfer-encoding")
                {
                    return .unusual
                }
                headers.append((name, value))
            }
        }
    }

    /// RFC 3986's characters of a path and a query: unreserved, sub-delims, `%`, `:`, `@`,
    /// `/` and `?`. (Others, which some parsers take and some refuse, go to NIO's parser.)
    private static func isTargetByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default: "-._~%!$&'()*+,;=:@/?".utf8.contains(byte)
        }
    }

    package static func == (lhs: FastUpgradeHead, rhs: FastUpgradeHead) -> Bool {
        lhs.length == rhs.length && lhs.target == rhs.target
            && lhs.headers.elementsEqual(rhs.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}
