import Benchmark

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension BenchmarkMetric {
    /// CPU time of the whole process (every thread) in nanoseconds. The library's `cpuTotal`
    /// counts clock ticks of 10 ms, longer than most iterations here, so an iteration read
    /// either 0 or 10 ms.
    static let processCPU = BenchmarkMetric.custom(
        "CPU (process, ns)", polarity: .prefersSmaller, useScalingFactor: true)
}

extension Benchmark {
    /// Runs `operation` `scalingFactor` times and records the process CPU time it took.
    func measureOperations(_ operation: () throws -> Void) rethrows {
        let start = processCPUNanoseconds()
        for _ in scaledIterations {
            try operation()
        }
        measurement(.processCPU, processCPUNanoseconds() - start)
    }
}

private func processCPUNanoseconds() -> Int {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return time.tv_sec * 1_000_000_000 + time.tv_nsec
}
