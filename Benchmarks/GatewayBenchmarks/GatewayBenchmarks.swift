import Benchmark

/// One operation of the event path per benchmark, named after what it does and how big the
/// input is. Each iteration runs the operation 1,000 times (`scalingFactor: .kilo`), so the
/// figures marked `*` in the table are per operation. Instructions appear only where the
/// machine has hardware performance counters. Run with `bash bench/micro.sh`.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .processCPU, .instructions, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )
    registerJSONBenchmarks()
    registerFrameBenchmarks()
    registerValidationBenchmarks()
    registerRoutingBenchmarks()
    registerBusHeaderBenchmarks()
}
