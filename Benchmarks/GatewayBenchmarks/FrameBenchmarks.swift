import AiravataServer
import Benchmark
import NIOWebSocket

/// Framing the encoded event as one WebSocket text frame; done once per event, not per client.
func registerFrameBenchmarks() {
    Benchmark("WebSocket.frame/text-\(BenchEvent.wire.count)B") { benchmark in
        let payload = BenchEvent.wire
        benchmark.measureOperations {
            blackHole(WebSocketWireFrame.encode(opcode: .text, payload: payload))
        }
    }
}
