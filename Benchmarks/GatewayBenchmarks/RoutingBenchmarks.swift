import AiravataCore
import AiravataProtocol
import AiravataServer
import Benchmark
import Logging
import NIOCore
import NIOPosix

/// The loop the sinks deliver on: a real one, as in the server, so `Gateway.route` pays for
/// the hand-off to another thread.
let deliveryLoop: any EventLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()

/// Finding who gets the bench event, and the whole delivery step. Every connection is a plain
/// user subscribed to its own project (not an admin), so `Authorization.mayReceive` checks
/// ownership and membership for each candidate, as in production.
func registerRoutingBenchmarks() {
    let routing = BenchEvent.event.routing

    Benchmark(
        "Routing.recipients/1-of-10k-connections",
        closure: { benchmark, index in
            benchmark.measureOperations {
                blackHole(index.recipientsByLoop(of: routing) { Authorization.mayReceive(routing, principal: $0) })
            }
        },
        setup: { subscribe(SubscriptionIndex(), connections: 10_000, onEventProject: 1) }
    )

    // About 150 µs an operation: one per iteration, or a run would hold only a few samples.
    Benchmark(
        "Routing.recipients/1k-of-10k-connections",
        configuration: .init(scalingFactor: .one),
        closure: { benchmark, index in
            benchmark.measureOperations {
                blackHole(index.recipientsByLoop(of: routing) { Authorization.mayReceive(routing, principal: $0) })
            }
        },
        setup: { subscribe(SubscriptionIndex(), connections: 10_000, onEventProject: 1_000) }
    )

    // The whole delivery step of a node: frame once, remember for replay, look up, authorise,
    // hand to the recipient's loop. The loop's thread also counts in CPU and mallocs.
    Benchmark(
        "Gateway.route/1-of-10k-connections",
        closure: { benchmark, gateway in
            let delivered = BenchEvent.delivered
            benchmark.measureOperations {
                gateway.route(delivered)
            }
        },
        setup: { try await makeGateway(connections: 10_000, onEventProject: 1) }
    )
}

/// A single node's gateway as `serve` wires it without Redis, with WebSocket framing, and
/// its index filled by `subscribe`.
func makeGateway(connections: Int, onEventProject: Int) async throws -> Gateway {
    let configuration = GatewayConfiguration(nodeID: "bench", statsIntervalSeconds: 0)
    let gateway = Gateway(
        configuration: configuration,
        verifier: try await TokenVerifier(
            configuration: .init(hmacSecret: "bench-secret-0123456789abcdef0123456789abcdef")),
        bus: EmbeddedEventBus(),
        ownership: InMemoryOwnershipIndex(),
        limiter: InMemoryConnectionLimiter(limits: configuration.limits),
        frames: WebSocketTextFrames(),
        logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
    )
    subscribe(gateway.index, connections: connections, onEventProject: onEventProject)
    return gateway
}

/// Fills `index` with `connections` connections, one project subscription each;
/// `onEventProject` of them on the bench event's project, every other one on a project of its own.
@discardableResult
func subscribe(_ index: SubscriptionIndex, connections: Int, onEventProject: Int) -> SubscriptionIndex {
    for number in 0..<connections {
        let id = SubscriptionIndex.ConnectionID(number)
        let project = number < onEventProject ? BenchEvent.projectID : "project-\(number)"
        index.add(
            id, sink: DiscardingSink(eventLoop: deliveryLoop),
            principal: Principal(userID: "user-\(number)", projects: [project]))
        guard index.subscribe(id, to: SubscriptionKey(.project, project), limit: 1) == .added else {
            fatalError("connection \(number) could not subscribe to project \(project)")
        }
    }
    return index
}
