import Foundation

/// This process's resources, read from /proc (Linux): what an operator checks first when a
/// node misbehaves — memory, descriptors, threads, CPU.
struct ProcessFigures {
    var residentBytes: Int?
    var openDescriptors: Int?
    var maxDescriptors: Int?
    var threads: Int?
    var cpuSeconds: Double?
    var startTimeSeconds: Double?

    /// Clock ticks per second of /proc/self/stat; Linux fixes it at 100 for user space.
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    static func read() -> ProcessFigures {
        var figures = ProcessFigures()
        if let status = Self.text(of: "/proc/self/status") {
            for line in status.split(separator: "\n") {
                if line.hasPrefix("VmRSS:") {
                    figures.residentBytes = Self.firstNumber(line).map { $0 * 1024 }
                } else if line.hasPrefix("Threads:") {
                    figures.threads = Self.firstNumber(line)
                }
            }
        }
        figures.openDescriptors = openDescriptorCount()
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { figures.maxDescriptors = Int(limit.rlim_cur) }
        if let stat = Self.text(of: "/proc/self/stat"),
            let close = stat.lastIndex(of: ")")
        {
            // Fields after the command name, which may itself hold spaces and parentheses.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
            if fields.count > 20, let user = Double(fields[11]), let system = Double(fields[12]),
                let started = Double(fields[19])
            {
                figures.cpuSeconds = (user + system) / ticksPerSecond
                figures.startTimeSeconds = Self.bootTime().map { $0 + started / ticksPerSecond }
            }
        }
        return figures
    }

    /// Open descriptors. Linux 6.2 and later report the count as the size of /proc/self/fd,
    /// one `stat`; older kernels report 0 there, and only then is the directory listed.
    /// Listing costs the kernel a directory entry per descriptor, which on a node holding
    /// 20,000 WebSockets is milliseconds, and the node report asks for this every second.
    static func openDescriptorCount() -> Int? {
        var info = stat()
        if stat("/proc/self/fd", &info) == 0, info.st_size > 0 {
            return Int(info.st_size)
        }
        return listedDescriptorCount()
    }

    /// Open descriptors by listing /proc/self/fd, less the one the listing itself holds.
    static func listedDescriptorCount() -> Int? {
        listedEntries(in: "/proc/self/fd").map { max($0 - 1, 0) }
    }

    /// The entries of a /proc descriptor directory, without `.` and `..`.
    static func listedEntries(in path: String) -> Int? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { count += 1 }
        }
        return count
    }

    /// A /proc file's whole text. `String(contentsOfFile:)` stops after the first page of a
    /// /proc file (it trusts the size, which /proc reports as 0), and on a host with many
    /// cores /proc/stat's `btime` line lies beyond it.
    static func text(of path: String) -> String? {
        guard let file = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? file.close() }
        return (try? file.readToEnd()).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func firstNumber(_ line: Substring) -> Int? {
        line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) }
    }

    private static func bootTime() -> Double? {
        guard let stat = Self.text(of: "/proc/stat") else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// The standard `process_*` metrics (the names Prometheus client libraries use).
    var prometheusText: [UInt8] {
        var text = ""
        func add(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        add("process_resident_memory_bytes", "gauge", "Resident memory size in bytes", residentBytes.map(Double.init))
        add("process_open_fds", "gauge", "Open file descriptors", openDescriptors.map(Double.init))
        add("process_max_fds", "gauge", "Most open file descriptors allowed", maxDescriptors.map(Double.init))
        add("process_threads", "gauge", "Operating-system threads", threads.map(Double.init))
        add("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds", cpuSeconds)
        add("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch", startTimeSeconds)
        return Array(text.utf8)
    }
}
