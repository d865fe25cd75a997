import AiravataProtocol
package import NIOCore
package import NIOHTTP1

/// The RFC 6455 §4.2.1 checks of an opening handshake, made before anything is upgraded.
///
/// NIO's upgrader checks the version and the key's presence, and hands a head it refuses back
/// down the pipeline; a request it must not upgrade (a POST, HTTP/1.0, a key of the wrong
/// length) it upgrades all the same. Every upgrade attempt therefore passes through here
/// first, and gets exactly one answer: 101, or the refusal below, after which the connection
/// closes.
package enum WebSocketHandshake {
    package struct Refusal: Error, Equatable, Sendable {
        package var status: HTTPResponseStatus
        package var message: String
        /// 426 tells the client which version we speak.
        package var headers: [(String, String)] {
            status == .upgradeRequired ? [("sec-websocket-version", "13")] : []
        }

        package static func == (lhs: Refusal, rhs: Refusal) -> Bool {
            lhs.status == rhs.status && lhs.message == rhs.message
        }
    }

    /// Whether the request asks for a WebSocket at all (`Upgrade: websocket`, any case).
    package static func isAttempt(_ head: HTTPRequestHead) -> Bool {
        head.headers.contains { name, value in
            equalsIgnoringCase(name.utf8, "upgrade") && lists(value, "websocket")
        }
    }

    /// Whether a comma-separated header value lists `token`, ASCII letters in any case,
    /// blanks around each item ignored (what `HTTPHeaders[canonicalForm:]` and a lowercased
    /// comparison decided, without a string per item).
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
    private static func equalsIgnoringCase(_ bytes: some Collection<UInt8>, _ lowered: StaticString) -> Bool {
        let token = UnsafeRawBufferPointer(start: lowered.utf8Start, count: lowered.utf8CodeUnitCount)
        let lower = { (byte: UInt8) in (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }
        return bytes.count == token.count && zip(bytes, token).allSatisfy { lower($0) == $1 }
    }

    /// Nil when the head is a valid opening handshake to one of our endpoints.
    package static func refusal(for head: HTTPRequestHead) -> Refusal? {
        guard head.method == .GET else {
            return Refusal(status: .badRequest, message: "A WebSocket handshake must be a GET request")
        }
        guard head.version.major == 1, head.version.minor >= 1 else {
            return Refusal(status: .badRequest, message: "A WebSocket handshake needs HTTP/1.1")
        }
        guard
            head.headers.contains(where: {
                equalsIgnoringCase($0.name.utf8, "connection") && lists($0.value, "upgrade")
            })
        else {
            return Refusal(status: .badRequest, message: "A WebSocket handshake needs 'Connection: Upgrade'")
        }
        let versions = head.headers["sec-websocket-version"]
        guard versions.count == 1, trimmed(versions[0]) == "13" else {
            return Refusal(status: .upgradeRequired, message: "Unsupported WebSocket version; this server speaks 13")
        }
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1 else {
            return Refusal(
                status: .badRequest,
                message: keys.isEmpty ? "Sec-WebSocket-Key is missing" : "Sec-WebSocket-Key is given more than once")
        }
        guard isValidKey(keys[0]) else {
            return Refusal(status: .badRequest, message: "Sec-WebSocket-Key must be 16 bytes in base64")
        }
        guard WebSocketRoute.endpoint(WebSocketRoute.split(head.uri).path) != nil else {
            return Refusal(status: .badRequest, message: "No WebSocket endpoint at this path")
        }
        return nil
    }

    /// The `Sec-WebSocket-Accept` value that proves to the client that we read its key
    /// (RFC 6455 §4.2.2): base64 of the SHA-1 of the key and the protocol's GUID. Nil without
    /// exactly one key.
    package static func acceptValue(for head: HTTPRequestHead) -> String? {
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1 else { return nil }
        return base64(SHA1.digest(Array(trimmed(keys[0]).utf8) + guid))
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

    /// The 101 answer to a valid opening handshake, as bytes: the whole of it is constant but
    /// for the accept value, so it is written out rather than built by the HTTP encoder.
    package static func switchingProtocols(for head: HTTPRequestHead) -> ByteBuffer? {
        guard let accept = acceptValue(for: head) else { return nil }
        return ByteBuffer(
            string: "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
                + "sec-websocket-accept: \(accept)\r\n\r\n")
    }

    /// RFC 6455 §1.3.
    private static let guid = Array("258EAFA5-E914-47DA-95CA-C5AB0DC85B11".utf8)

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
    private static func trimmed(_ value: String) -> String {
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        let utf8 = value.utf8
        guard let first = utf8.firstIndex(where: { !isBlank($0) }), let last = utf8.lastIndex(where: { !isBlank($0) })
        else { return "" }
        return String(value[first...last])
    }
}
