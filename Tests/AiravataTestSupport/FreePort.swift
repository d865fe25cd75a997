import Foundation

/// A loopback TCP port that was free a moment ago (the kernel picks it; a race with
/// another process is possible but unlikely, and shows as a bind error, not a hang).
public func freeLoopbackPort() throws -> Int {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw TestSupportError("socket() failed") }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
    }
    guard bound == 0 else { throw TestSupportError("bind() failed") }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Where `freeConsecutiveLoopbackPorts` looks: above the usual service ports, below Linux's
/// ephemeral range (32768 and up), so that outgoing connections do not take them meanwhile.
let consecutivePortRange = 20_000..<32_000
/// How many random bases `freeConsecutiveLoopbackPorts` tries before giving up.
let consecutivePortAttempts = 100

/// The first of `count` consecutive loopback ports that were all free a moment ago, for
/// scripts that number their nodes' ports from a base (cluster/start.sh).
public func freeConsecutiveLoopbackPorts(_ count: Int) throws -> Int {
    for _ in 0..<consecutivePortAttempts {
        let base = Int.random(in: consecutivePortRange.lowerBound..<(consecutivePortRange.upperBound - count))
        if (base..<(base + count)).allSatisfy(isFreeLoopbackPort) { return base }
    }
    throw TestSupportError("no \(count) consecutive free loopback ports in \(consecutivePortRange)")
}

/// Whether a listener could bind `port` on 127.0.0.1 now.
public func isFreeLoopbackPort(_ port: Int) -> Bool {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { return false }
    defer { close(socket) }
    var address = loopbackAddress(port: port)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return bound == 0
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` now.
public func isListeningLoopbackPort(_ port: Int) -> Bool {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { return false }
    defer { close(socket) }
    var address = loopbackAddress(port: port)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return connected == 0
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return address
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
