import AiravataCore
import AiravataProtocol
import Benchmark

/// The JSON work of one event: parsing what the producer posts, writing what clients get.
func registerJSONBenchmarks() {
    Benchmark("JSON.parse/event-\(BenchEvent.body.count)B") { benchmark in
        let body = BenchEvent.body
        try benchmark.measureOperations {
            blackHole(try JSONValue(parsing: body))
        }
    }

    // What `Gateway.route` encodes once per event: a fresh array each time, as there.
    Benchmark("JSON.encode/envelope-\(BenchEvent.wire.count)B") { benchmark in
        let envelope = BenchEvent.envelope
        benchmark.measureOperations {
            blackHole(envelope.encoded())
        }
    }

    // The writer alone: into one buffer kept across operations, so no growth is counted.
    Benchmark("JSON.write/data-\(BenchEvent.data.count)B") { benchmark in
        let data = BenchEvent.event.data
        var bytes: [UInt8] = []
        bytes.reserveCapacity(BenchEvent.data.count)
        benchmark.measureOperations {
            bytes.removeAll(keepingCapacity: true)
            data.write(into: &bytes)
            blackHole(bytes)
        }
    }
}
