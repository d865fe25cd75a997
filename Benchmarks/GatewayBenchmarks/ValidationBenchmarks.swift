import AiravataCore
import Benchmark

/// What ingestion checks per POST once the body has parsed: shape, type, ids and routing.
func registerValidationBenchmarks() {
    Benchmark("Ingest.validate/event-\(BenchEvent.body.count)B") { benchmark in
        let validator = EventValidator()
        let document = BenchEvent.document
        try benchmark.measureOperations {
            blackHole(try validator.validate(document))
        }
    }
}
