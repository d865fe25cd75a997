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
        let segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard segments.first == "ws" else { return nil }
        switch segments.count {
        case 1:
            subscription = nil
        case 2 where segments[1] == "user":
            subscription = .init(resourceType: .user, resourceID: nil)
        case 2 where segments[1] == "system":
            subscription = .init(resourceType: .system, resourceID: nil)
        case 3:
            guard let resource = ResourceType(pathSegment: segments[1]),
                let id = segments[2].removingPercentEncoding, !id.isEmpty
            else { return nil }
            subscription = .init(resourceType: resource, resourceID: id)
        default:
            return nil
        }
        token = Self.queryValue("token", in: query) ?? Self.bearerToken(head.headers)
        if let session = Self.queryValue("session", in: query), !session.isEmpty {
            let cursor = Self.queryValue("cursor", in: query)
            resume = Gateway.ResumeRequest(sessionID: session, cursor: cursor?.isEmpty == true ? nil : cursor)
        }
    }

    package static func split(_ uri: String) -> (path: Substring, query: Substring?) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri[...], nil) }
        return (uri[..<mark], uri[uri.index(after: mark)...])
    }

    package static func queryValue(_ name: String, in query: Substring?) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.first == Substring(name) else { continue }
            let raw = parts.count > 1 ? String(parts[1]) : ""
            return raw.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? raw
        }
        return nil
    }

    package static func bearerToken(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization") else { return nil }
        let parts = value.utf8.split(separator: UInt8(ascii: " "), maxSplits: 1)
        guard parts.count == 2, isBearer(parts[0]) else { return nil }
        // Spaces and tabs around the token are not part of it (RFC 9110 §5.5).
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var token = parts[1]
        while let first = token.first, isBlank(first) { token.removeFirst() }
        while let last = token.last, isBlank(last) { token.removeLast() }
        return String(decoding: token, as: UTF8.self)
    }

    /// The scheme name, case-insensitively (RFC 9110 §11.1), ASCII only.
    private static func isBearer(_ scheme: some Collection<UInt8>) -> Bool {
        scheme.count == 6 && zip(scheme, "bearer".utf8).allSatisfy { $0 | 0x20 == $1 }
    }
}
