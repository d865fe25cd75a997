package import AiravataCore
package import AiravataProtocol
import Foundation
package import NIOHTTP1

/// A WebSocket request's path, token and client address, read from the upgrade request.
package struct WebSocketRoute: Sendable, Equatable {
    /// The subscription the path asks for; nil for bare `/ws`.
    package var subscription: ClientMessage.SubscriptionRequest?
    package var token: String?
    /// `?session=…&cursor=…`: the client resumes its session from that cursor.
    package var resume: Gateway.ResumeRequest?

    /// Nil when the path is not one of the WebSocket endpoints.
    package init?(head: HTTPRequestHead) {
        let (path, query) = Self.split(head.uri)
        guard let endpoint = Self.endpoint(path) else { return nil }
        subscription = endpoint.subscription
        token = Self.queryValue("token", in: query) ?? Self.bearerToken(head.headers)
        if let session = Self.queryValue("session", in: query), !session.isEmpty {
            let cursor = Self.queryValue("cursor", in: query)
            resume = Gateway.ResumeRequest(sessionID: session, cursor: cursor?.isEmpty == true ? nil : cursor)
        }
    }

    /// One of the WebSocket endpoints, and the subscription its path asks for.
    package struct Endpoint: Equatable, Sendable {
        package var subscription: ClientMessage.SubscriptionRequest?
    }

    /// Nil when the path (without its query) is not one of the WebSocket endpoints. Cheaper
    /// than the whole route: the handshake checks only this. Segments are cut at `/` bytes
    /// and compared as bytes, as the query is read: a split by Character walked grapheme
    /// clusters and made an array (about 2.6 % of a connect, run twice per handshake), and
    /// kept a `/` that a combining mark follows inside a segment.
    package static func endpoint(_ path: Substring) -> Endpoint? {
        var segments: (Substring, Substring, Substring) = ("", "", "")
        var count = 0
        let bytes = path.utf8
        var index = bytes.startIndex
        while index < bytes.endIndex {
            guard bytes[index] != slash else {
                index = bytes.index(after: index)
                continue
            }
            let end = bytes[index...].firstIndex(of: slash) ?? bytes.endIndex
            switch count {
            case 0: segments.0 = path[index..<end]
            case 1: segments.1 = path[index..<end]
            case 2: segments.2 = path[index..<end]
            default: return nil
            }
            count += 1
            index = end
        }
        guard count > 0, segments.0.utf8.elementsEqual("ws".utf8) else { return nil }
        switch count {
        case 1:
            return Endpoint(subscription: nil)
        case 2 where segments.1.utf8.elementsEqual("user".utf8):
            return Endpoint(subscription: .init(resourceType: .user, resourceID: nil))
        case 2 where segments.1.utf8.elementsEqual("system".utf8):
            return Endpoint(subscription: .init(resourceType: .system, resourceID: nil))
        case 3:
            guard let resource = ResourceType(pathSegment: String(segments.1)),
                let id = Self.percentDecoded(segments.2), !id.isEmpty
            else { return nil }
            return Endpoint(subscription: .init(resourceType: resource, resourceID: id))
        default:
            return nil
        }
    }

    private static let slash = UInt8(ascii: "/")

    /// Path and query at the first `?` byte. Searched over the UTF-8 bytes, as a URI's
    /// delimiters are: a Character search walks grapheme clusters (about 1 % of an ingesting
    /// node's CPU, every request splits its target), and would miss a `?` that a combining
    /// mark follows.
    package static func split(_ uri: String) -> (path: Substring, query: Substring?) {
        guard let mark = uri.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (uri[...], nil) }
        return (uri[..<mark], uri[uri.utf8.index(after: mark)...])
    }

    /// The first `name=value` of the query, decoded; names compare as bytes. Read over the
    /// UTF-8 bytes: splitting a Substring walks grapheme clusters, slow on a long token.
    package static func queryValue(_ name: String, in query: Substring?) -> String? {
        guard let query else { return nil }
        let bytes = query.utf8
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.endIndex
            let equals = bytes[start..<end].firstIndex(of: UInt8(ascii: "=")) ?? end
            if start < end, bytes[start..<equals].elementsEqual(name.utf8) {
                let raw = equals < end ? query[bytes.index(after: equals)..<end] : query[end..<end]
                return percentDecoded(raw, plusIsSpace: true) ?? String(raw)
            }
            start = end < bytes.endIndex ? bytes.index(after: end) : end
        }
        return nil
    }

    /// `%XX` escapes decoded (and `+` as a space in a query), like Foundation's
    /// `removingPercentEncoding` on Darwin: nil when an escape is malformed or the decoded
    /// bytes are not UTF-8 (Foundation on Linux sometimes repairs those instead).
    /// Written out because Foundation's took a tenth of a connect's CPU with a token in the query.
    package static func percentDecoded(_ text: Substring, plusIsSpace: Bool = false) -> String? {
        let utf8 = text.utf8
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusIsSpace && $0 == UInt8(ascii: "+")) }) else {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let high = utf8.index(after: index)
                guard high < utf8.endIndex, let first = hexValue(utf8[high]) else { return nil }
                let low = utf8.index(after: high)
                guard low < utf8.endIndex, let second = hexValue(utf8[low]) else { return nil }
                bytes.append(first << 4 | second)
                index = utf8.index(after: low)
            } else {
                bytes.append(plusIsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index = utf8.index(after: index)
            }
        }
        return UTF8Validation.string(bytes)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    package static func bearerToken(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization") else { return nil }
        // Once per ingestion request: slices of the header's bytes, no array of parts.
        // Spaces and tabs around the scheme and the token are not part of them (RFC 9110 §5.5).
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var rest = value.utf8[...]
        while let first = rest.first, first == UInt8(ascii: " ") { rest.removeFirst() }
        guard let space = rest.firstIndex(of: UInt8(ascii: " ")), isBearer(rest[..<space]) else { return nil }
        var token = rest[rest.index(after: space)...]
        while let first = token.first, isBlank(first) { token.removeFirst() }
        while let last = token.last, isBlank(last) { token.removeLast() }
        guard !token.isEmpty else { return nil }
        return String(decoding: token, as: UTF8.self)
    }

    /// The scheme name, case-insensitively (RFC 9110 §11.1), ASCII only.
    private static func isBearer(_ scheme: some Collection<UInt8>) -> Bool {
        scheme.count == 6 && zip(scheme, "bearer".utf8).allSatisfy { $0 | 0x20 == $1 }
    }
}
