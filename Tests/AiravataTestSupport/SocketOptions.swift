import Foundation

@_silgen_name("pidfd_open")
private func pidfdOpen(_ pid: Int32, _ flags: UInt32) -> Int32

@_silgen_name("pidfd_getfd")
private func pidfdGetfd(_ pidfd: Int32, _ targetfd: Int32, _ flags: UInt32) -> Int32

/// The `TCP_NODELAY` setting of every established connection that process `pid` accepted on
/// loopback `port`, read from its own sockets (a copy of each descriptor through
/// `pidfd_getfd`, which needs the right to trace the process: the test runner's child).
public func noDelaySettingsOfAcceptedSockets(pid: Int32, port: Int) throws -> [Int32] {
    let inodes = socketInodes(localPort: port, state: "01")
    let directory = "/proc/\(pid)/fd"
    let entries = try FileManager.default.contentsOfDirectory(atPath: directory)
    let pidfd = pidfdOpen(pid, 0)
    guard pidfd >= 0 else { throw TestSupportError("pidfd_open(\(pid)) failed: errno \(errno)") }
    defer { close(pidfd) }
    var settings: [Int32] = []
    for entry in entries {
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(entry)"),
            link.hasPrefix("socket:["), inodes.contains(String(link.dropFirst(8).dropLast())),
            let target = Int32(entry)
        else { continue }
        let copy = pidfdGetfd(pidfd, target, 0)
        guard copy >= 0 else { throw TestSupportError("pidfd_getfd(\(pid), \(target)) failed: errno \(errno)") }
        defer { close(copy) }
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(copy, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length) == 0 else {
            throw TestSupportError("getsockopt(TCP_NODELAY) failed: errno \(errno)")
        }
        settings.append(value)
    }
    return settings
}

/// How many listening sockets process `pid` holds on `port`.
public func listeningSocketCount(pid: Int32, port: Int) throws -> Int {
    let inodes = socketInodes(localPort: port, state: "0A")
    let directory = "/proc/\(pid)/fd"
    return try FileManager.default.contentsOfDirectory(atPath: directory).count { entry in
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(entry)") else {
            return false
        }
        return link.hasPrefix("socket:[") && inodes.contains(String(link.dropFirst(8).dropLast()))
    }
}

/// The inodes of TCP sockets in `state` (01 established, 0A listening) whose local port is
/// `localPort`, from /proc/net/tcp.
private func socketInodes(localPort: Int, state: String) -> Set<String> {
    // Not `FileManager.contents(atPath:)`: it reads a /proc file's first page only.
    guard let file = FileHandle(forReadingAtPath: "/proc/net/tcp"), let table = try? file.readToEnd() else {
        return []
    }
    try? file.close()
    let local = ":" + String(format: "%04X", localPort)
    var inodes: Set<String> = []
    for line in String(decoding: table, as: UTF8.self).split(separator: "\n").dropFirst() {
        // sl, local_address, rem_address, st, tx:rx, tr:when, retrnsmt, uid, timeout, inode
        let fields = line.split(separator: " ")
        if fields.count > 9, fields[1].hasSuffix(local), fields[3] == state { inodes.insert(String(fields[9])) }
    }
    return inodes
}
