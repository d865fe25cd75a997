import Foundation
import Synchronization

/// Ports this test process has handed out. None is handed out twice: two tests that probe
/// the same port before either node binds it would otherwise both get it, and one node
/// would then fail to start.
private let handedOutPorts = Mutex<Set<Int>>([])

/// Takes `port` for this process if no earlier call took it.
private func takePort(_ port: Int) -> Bool {
    handedOutPorts.withLock { $0.insert(port).inserted }
}

/// A loopback port free a moment ago, for a server a test starts. It comes from below
/// Linux's ephemeral range: a port from `bind(…:0)` lies inside it, where every outgoing
/// connection of every running test takes its source port, and a node handed such a port
/// could find it taken by the time it binds (the likeliest cause of a CI run's node that
/// never became ready).
public func freeLoopbackPort() throws -> Int {
    for _ in 0..<consecutivePortAttempts {
        let port = Int.random(in: consecutivePortRange)
        if takePort(port) && isFreeLoopbackPort(port) { return port }
    }
    throw TestSupportError("no free loopback port in \(consecutivePortRange)")
}

/// Where `freeLoopbackPort` and `freeConsecutiveLoopbackPorts` look: above the usual service
/// ports, below Linux's ephemeral range (32768 and up), so that outgoing connections do not
/// take them meanwhile.
let consecutivePortRange = 20_000..<32_000
/// How many random ports or bases the two try before giving up.
let consecutivePortAttempts = 100

/// The first of `count` consecutive loopback ports that were all free a moment ago, for
/// scripts that number their nodes' ports from a base (cluster/start.sh).
public func freeConsecutiveLoopbackPorts(_ count: Int) throws -> Int {
    for _ in 0..<consecutivePortAttempts {
        let base = Int.random(in: consecutivePortRange.lowerBound..<(consecutivePortRange.upperBound - count))
        if (base..<(base + count)).allSatisfy({ takePort($0) && isFreeLoopbackPort($0) }) { return base }
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

/// Whether process `pid`, or one of its children (a wrapper's), holds the listening socket on
/// 127.0.0.1:`port`. A port picked free may be taken by another test's process before ours
/// binds it; ours then exits, and probes of the port reach the other process. Readiness
/// waits check this so that a test never talks to a stranger.
public func processListens(pid: Int32, port: Int) -> Bool {
    guard let inode = listeningSocketInode(port: port) else { return false }
    let target = "socket:[\(inode)]"
    let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
    let candidates = [pid] + children.split(separator: " ").compactMap { Int32($0) }
    for candidate in candidates {
        let directory = "/proc/\(candidate)/fd"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
        for entry in entries
        where (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(entry)")) == target {
            return true
        }
    }
    return false
}

/// The inode of the socket listening on 127.0.0.1:`port` (or 0.0.0.0), from /proc/net/tcp.
/// The table holds every socket of the machine (thousands while the suite runs), so the
/// listener's line is found by Foundation's search, and only that line is split.
private func listeningSocketInode(port: Int) -> String? {
    // Not `FileManager.contents(atPath:)`: it reads a /proc file's first page only.
    guard let file = FileHandle(forReadingAtPath: "/proc/net/tcp") else { return nil }
    defer { try? file.close() }
    guard let table = try? file.readToEnd() else { return nil }
    // A listener's line: local address, then remote 00000000:0000, then state 0A.
    let needle = Data((":" + String(format: "%04X", port) + " 00000000:0000 0A ").utf8)
    let newline = Data([UInt8(ascii: "\n")])
    var searched = table.startIndex..<table.endIndex
    while let found = table.range(of: needle, in: searched) {
        let start =
            table.range(of: newline, options: .backwards, in: table.startIndex..<found.lowerBound)?.upperBound
            ?? table.startIndex
        let end = table.range(of: newline, in: found.upperBound..<table.endIndex)?.lowerBound ?? table.endIndex
        let fields = String(decoding: table[start..<end], as: UTF8.self).split(separator: " ")
        // sl, local_address, rem_address, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode
        if fields.count > 9, fields[1].hasPrefix("0100007F") || fields[1].hasPrefix("00000000") {
            return String(fields[9])
        }
        searched = end..<table.endIndex
    }
    return nil
}
