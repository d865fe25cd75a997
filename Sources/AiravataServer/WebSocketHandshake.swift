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
            HandshakeTokens.equalsIgnoringCase(name.utf8, "upgrade") && HandshakeTokens.lists(value, "websocket")
        }
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
                HandshakeTokens.equalsIgnoringCase($0.name.utf8, "connection")
                    && HandshakeTokens.lists($0.value, "upgrade")
            })
        else {
            return Refusal(status: .badRequest, message: "A WebSocket handshake needs 'Connection: Upgrade'")
        }
        let versions = head.headers["sec-websocket-version"]
        guard versions.count == 1, HandshakeTokens.trimmed(versions[0]) == "13" else {
            return Refusal(status: .upgradeRequired, message: "Unsupported WebSocket version; this server speaks 13")
        }
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1 else {
            return Refusal(
                status: .badRequest,
                message: keys.isEmpty ? "Sec-WebSocket-Key is missing" : "Sec-WebSocket-Key is given more than once")
        }
        guard HandshakeTokens.isValidKey(keys[0]) else {
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
        return HandshakeTokens.base64(SHA1.digest(Array(HandshakeTokens.trimmed(keys[0]).utf8) + guid))
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
}
