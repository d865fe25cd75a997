import AiravataCluster
import AiravataCore
import Benchmark
import NIOCore

/// What an event costs the node that accepts it (writing its bus message) and a node it
/// reaches through Redis: reading a v2 body (routing header, UTF-8 check of the client
/// message), the old v1 body for comparison, splitting a pub/sub message (v2) or block (v3)
/// into its records, and the whole path on a node with no interested connection.
func registerBusHeaderBenchmarks() {
    let v2 = ByteBuffer(bytes: EventWireFormat.encodeV2(BenchEvent.event))
    let v1 = ByteBuffer(bytes: EventWireFormat.encodeV1(BenchEvent.event))

    // What the accepting node writes once per event: with `data` written from the parsed
    // value, and copied as the producer wrote it.
    Benchmark("Bus.encode/v2-data-written") { benchmark in
        benchmark.measureOperations { blackHole(EventWireFormat.encodeV2(BenchEvent.event)) }
    }
    Benchmark("Bus.encode/v2-data-as-written") { benchmark in
        benchmark.measureOperations { blackHole(EventWireFormat.encodeV2(BenchEvent.eventAsWritten)) }
    }

    Benchmark("Bus.decode/v2-\(v2.readableBytes)B") { benchmark in
        benchmark.measureOperations { blackHole(EventWireFormat.decode(v2)) }
    }
    Benchmark("Bus.decode/v1-\(v1.readableBytes)B") { benchmark in
        benchmark.measureOperations { blackHole(EventWireFormat.decode(v1)) }
    }

    // One publish call's message under load: 16 events.
    var message = ByteBuffer()
    for sequence in 0..<16 {
        message.writeString("1795713253458-\(sequence) \(v2.readableBytes)\n")
        message.writeImmutableBuffer(v2)
    }
    Benchmark("Bus.records/16-events") { benchmark in
        benchmark.measureOperations { blackHole(BusMessage.records(in: message)) }
    }

    // The same 16 events as a v3 block: its header, then the body the publishing node built.
    let block = ByteBuffer(bytes: BusMessage.blockBody(Array(repeating: Array(v2.readableBytesView), count: 16)))
    let header = ByteBuffer(string: "1795713253458-0 16 \(block.readableBytes)")
    Benchmark("Bus.blockRecords/16-events") { benchmark in
        benchmark.measureOperations {
            guard let read = BusMessage.blockHeader(header) else { return }
            blackHole(BusMessage.blockRecords(in: block, first: read.first, count: read.count))
        }
    }

    // A node whose 10,000 connections all listen elsewhere: split, decode, remember, look up.
    // One operation is one 16-event message: divide by 16 for the cost of an event. (v3
    // splits a block instead: `Bus.blockRecords` against `Bus.records` is the difference.)
    Benchmark(
        "Bus.idleNode/message-of-16-events",
        closure: { benchmark, gateway in
            benchmark.measureOperations {
                for (cursor, body) in BusMessage.records(in: message) ?? [] {
                    guard let event = EventWireFormat.decode(body) else { continue }
                    gateway.route(DeliveredEvent(event: event, cursor: cursor))
                }
            }
        },
        setup: { try await makeGateway(connections: 10_000, onEventProject: 0) }
    )
}
