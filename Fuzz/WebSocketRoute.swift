import AiravataCore
import AiravataProtocol
import AiravataServerRoute
import Foundation
import NIOHTTP1

/// The upgrade request's path, query and `Authorization` header, read before any token is
/// checked; then the session id and cursor of a resume, as the gateway checks them.
///
/// The input is the request target, optionally followed by a newline and the value of an
/// `Authorization` header.
///
/// Invariants: only `/ws` paths route; a subscription has an id exactly when its type
/// needs one; a resume names a non-empty session; the route written back as a canonical
/// target (every byte but letters and digits percent-encoded) reads as the same route; a
/// session id the gateway accepts is 8–128 letters, digits, `-` or `_`, and every id it
/// makes is accepted.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzWebSocketRoute(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let lines = input.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    var headers = HTTPHeaders()
    if lines.count == 2 { headers.add(name: "Authorization", value: String(lines[1])) }
    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: String(lines[0]), headers: headers)
    guard let route = WebSocketRoute(head: head) else { return 0 }

    let path = WebSocketRoute.split(head.uri).path
    // Segments are cut at `/` bytes and compared as bytes.
    let first = path.utf8.split(separator: UInt8(ascii: "/")).first.map(Array.init)
    invariant(first == Array("ws".utf8), "routed the path \(path.debugDescription)")
    if let subscription = route.subscription {
        let needsID = subscription.resourceType != .user && subscription.resourceType != .system
        invariant((subscription.resourceID != nil) == needsID, "\(subscription) from \(input.debugDescription)")
        invariant(subscription.resourceID?.isEmpty != true, "an empty resource id from \(input.debugDescription)")
    }
    if let resume = route.resume {
        invariant(!resume.sessionID.isEmpty, "an empty session id from \(input.debugDescription)")
        invariant(resume.cursor?.isEmpty != true, "an empty cursor from \(input.debugDescription)")
        checkSessionID(resume.sessionID)
    }

    let canonical = canonicalTarget(of: route)
    let reread = WebSocketRoute(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: canonical))
    invariant(reread == route, "\(canonical.debugDescription) read as \(String(describing: reread)), not \(route)")
    return 0
}

private let madeSessionIDAccepted = Gateway.isWellFormedSessionID(Gateway.newSessionID())

private func checkSessionID(_ id: String) {
    invariant(madeSessionIDAccepted, "the gateway refuses a session id it made")
    guard Gateway.isWellFormedSessionID(id) else { return }
    let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".utf8)
    invariant(
        (8...128).contains(id.utf8.count) && id.utf8.allSatisfy(allowed.contains), "accepted \(id.debugDescription)")
}

private func canonicalTarget(of route: WebSocketRoute) -> String {
    var path = "/ws"
    if let subscription = route.subscription {
        switch subscription.resourceType {
        case .user: path += "/user"
        case .system: path += "/system"
        case .experiment: path += "/experiments"
        case .task: path += "/tasks"
        case .project: path += "/projects"
        case .worker: path += "/workers"
        }
        if let id = subscription.resourceID { path += "/" + encoded(id) }
    }
    var query: [String] = []
    if let token = route.token { query.append("token=" + encoded(token)) }
    if let resume = route.resume {
        query.append("session=" + encoded(resume.sessionID))
        if let cursor = resume.cursor { query.append("cursor=" + encoded(cursor)) }
    }
    return query.isEmpty ? path : path + "?" + query.joined(separator: "&")
}

private func encoded(_ text: String) -> String {
    text.utf8.map { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            String(UnicodeScalar(byte))
        default:
            "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
        }
    }.joined()
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
