/// The pieces of a WebSocket opening handshake read from the client's header values, in
/// plain Swift (no NIO), so that the fuzz target `Fuzz/HandshakeTokens.swift` builds them
/// alone: header list tokens, the key's form, base64 for the accept value.
package enum HandshakeTokens {
    /// Whether a comma-separated header value lists `token`, ASCII letters in any case,
    /// blanks around each item ignored (what `HTTPHeaders[canonicalForm:]` and a lowercased
    /// comparison decided for ASCII, without a string per item).
    package static func lists(_ value: String, _ token: StaticString) -> Bool {
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let bytes = value.utf8
        var start = bytes.startIndex
        while start <= bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.endIndex
            var item = bytes[start..<end]
            while let first = item.first, isBlank(first) { item = item.dropFirst() }
            while let last = item.last, isBlank(last) { item = item.dropLast() }
            if equalsIgnoringCase(item, token) { return true }
            guard end < bytes.endIndex else { break }
            start = bytes.index(after: end)
        }
        return false
    }

    /// ASCII case-insensitive equality with a lower-case token.
    package static func equalsIgnoringCase(_ bytes: some Collection<UInt8>, _ lowered: StaticString) -> Bool {
        let token = UnsafeRawBufferPointer(start: lowered.utf8Start, count: lowered.utf8CodeUnitCount)
        let lower = { (byte: UInt8) in (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
        return bytes.count == token.count && zip(bytes, token).allSatisfy { lower($0) == $1 }
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Base64 with padding (RFC 4648 §4), for the 20 bytes of a digest.
    package static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var group = UInt32(bytes[index]) << 16
            if count > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { group |= UInt32(bytes[index + 2]) }
            for position in 0..<4 {
                out.append(
                    position <= count ? alphabet[Int(group >> UInt32(18 - 6 * position) & 0x3F)] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A key is the base64 of 16 bytes: 22 characters of the alphabet, then `==`.
    package static func isValidKey(_ key: String) -> Bool {
        let key = Array(trimmed(key).utf8)
        guard key.count == 24, key[22] == UInt8(ascii: "="), key[23] == UInt8(ascii: "=") else { return false }
        return key[..<22].allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                true
            default: false
            }
        }
    }

    /// Without the spaces and tabs around it (RFC 9110 §5.5: optional whitespace).
    package static func trimmed(_ value: String) -> String {
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let utf8 = value.utf8
        guard let first = utf8.firstIndex(where: { !isBlank($0) }), let last = utf8.lastIndex(where: { !isBlank($0) })
        else { return "" }
        return String(value[first...last])
    }
}
