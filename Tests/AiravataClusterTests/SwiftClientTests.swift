import AiravataClient
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Synchronization
import Testing

/// The official Swift client against real node processes: reconnect, resume, and its own
/// subscription bookkeeping when a session cannot be resumed.
@Suite("Swift client: reconnect and resume across nodes", .serialized)
struct SwiftClientTests {
    /// Everything a client reported, for the test to wait on and inspect.
    final class Recorder: Sendable {
        struct Log {
            var events: [Envelope] = []
            var connections: [(node: String, resumed: Bool)] = []
            var failures: [String] = []
            var disconnects: [(code: UInt16?, retryIn: Duration?)] = []
        }

        let log = Mutex(Log())

        func record(_ event: GatewayClient.Event) {
            log.withLock { log in
                switch event {
                case .connected(_, let node, let resumed): log.connections.append((node, resumed))
                case .message(let envelope) where envelope.cursor != nil: log.events.append(envelope)
                case .recoveryFailed(let reason): log.failures.append(reason)
                case .disconnected(let code, _, let retryIn): log.disconnects.append((code, retryIn))
                default: break
                }
            }
        }

        var events: [Envelope] { log.withLock { $0.events } }
        var connections: [(node: String, resumed: Bool)] { log.withLock { $0.connections } }
        var failures: [String] { log.withLock { $0.failures } }
        var disconnects: [(code: UInt16?, retryIn: Duration?)] { log.withLock { $0.disconnects } }
        /// Whether the client reported that it stopped for good.
        var gaveUp: Bool { disconnects.contains { $0.retryIn == nil } }

        /// The `completedTasks` numbers of the progress events received, in arrival order.
        var sequence: [Int] {
            events.compactMap { envelope in
                guard case .number(let text)? = envelope.data?["completedTasks"] else { return nil }
                return Int(text)
            }
        }
    }

    static func client(
        _ cluster: ClusterHarness,
        nodes: [Int],
        path: String,
        resume: Bool = true,
        recorder: Recorder
    ) async throws -> GatewayClient {
        let token = try await cluster.token("alice", projects: ["proj-1"])
        var configuration = GatewayClient.Configuration(host: "127.0.0.1", port: 1, path: path) { token }
        configuration.endpoints = nodes.map { ("127.0.0.1", cluster.node($0).port) }
        configuration.initialBackoff = .milliseconds(50)
        configuration.maximumBackoff = .milliseconds(500)
        configuration.resume = resume
        let client = GatewayClient(configuration: configuration) { recorder.record($0) }
        client.start()
        guard await eventually(within: .seconds(10), { recorder.connections.count == 1 }) else {
            throw TestSupportError("the client did not connect")
        }
        return client
    }

    @Test("its node is killed with SIGKILL mid-stream: the client resumes on the other node and loses nothing")
    func resumeAfterKill() async throws {
        try await ClusterHarness.with(nodes: 2) { cluster in
            try await cluster.publish(
                1, ClusterEvents.experiment(id: "exp-1", project: "proj-1", owner: "alice"))
            let recorder = Recorder()
            let client = try await Self.client(
                cluster, nodes: [0, 1], path: "/ws/experiments/exp-1", recorder: recorder)
            let total = 300
            for sequence in 1...total {
                if sequence == 100 { cluster.kill9(0) }
                try await cluster.publish(1, ClusterEvents.progress(experiment: "exp-1", sequence: sequence))
            }
            let complete = await eventually(within: .seconds(15)) { recorder.sequence.count >= total }
            await client.stop()
            #expect(complete)
            #expect(recorder.sequence == Array(1...total), "every event once, in order")
            #expect(recorder.connections.count == 2)
            #expect(recorder.connections.last?.resumed == true)
            #expect(recorder.failures.isEmpty)
        }
    }

    @Test("without resume the client restores its explicit subscriptions itself (and misses the gap)")
    func resubscribesWithoutResume() async throws {
        try await ClusterHarness.with(nodes: 2) { cluster in
            try await cluster.publish(
                1, ClusterEvents.experiment(id: "exp-2", project: "proj-1", owner: "alice"))
            let recorder = Recorder()
            let client = try await Self.client(cluster, nodes: [0, 1], path: "/ws", resume: false, recorder: recorder)
            client.subscribe(.init(.experiment, "exp-2"))
            // Confirmed once an event for it arrives.
            guard
                await eventually(
                    within: .seconds(10),
                    {
                        _ = try? await cluster.publish(1, ClusterEvents.progress(experiment: "exp-2", sequence: 0))
                        return !recorder.events.isEmpty
                    })
            else { throw TestSupportError("the subscription never delivered") }
            // The gap: the client's node is frozen (it can deliver nothing) while event 1 is
            // published, then killed; without resume nothing may bring event 1 back. A witness on
            // the other node shows event 1 routed there before the client can arrive, so it
            // cannot reach the client late as a live event.
            let witness = try await cluster.connect(1, "/ws/experiments/exp-2", user: "alice", projects: ["proj-1"])
            defer { witness.close() }
            kill(cluster.node(0).process.processIdentifier, SIGSTOP)
            try await cluster.publish(1, ClusterEvents.progress(experiment: "exp-2", sequence: 1))
            let seen = try await witness.nextMessage(ofType: "experiment_progress")
            #expect(seen["data"]?["completedTasks"] == .integer(1), "the witness got \(seen.jsonString)")
            cluster.kill9(0)
            guard await eventually(within: .seconds(10), { recorder.connections.count == 2 }) else {
                throw TestSupportError("the client did not reconnect")
            }
            #expect(recorder.connections.last?.resumed == false)
            let delivered = await eventually(within: .seconds(10)) {
                _ = try? await cluster.publish(1, ClusterEvents.progress(experiment: "exp-2", sequence: 2))
                return recorder.sequence.contains(2)
            }
            await client.stop()
            #expect(delivered, "the re-sent subscription delivers on the new node")
            // A replay would have come before the live event 2; none did.
            #expect(!recorder.sequence.contains(1), "the gap event arrived without resume: \(recorder.sequence)")
            #expect(recorder.failures == ["resume_disabled"], "the client says the gap could not be recovered")
            #expect(client.subscriptions == [.init(.experiment, "exp-2")])
        }
    }

    /// Tokens handed out by a token function, in order; the last one repeats.
    final class TokenSource: Sendable {
        private let tokens: Mutex<(list: [String], calls: Int)>
        init(_ tokens: [String]) { self.tokens = Mutex((tokens, 0)) }
        func next() -> String {
            tokens.withLock { state in
                defer { state.calls += 1 }
                return state.list[min(state.calls, state.list.count - 1)]
            }
        }
        var calls: Int { tokens.withLock { $0.calls } }
    }

    /// A token whose signature the node refuses (1008 before admission).
    static func forged(_ cluster: ClusterHarness, _ user: String) async throws -> String {
        let token = try await cluster.token(user, projects: ["proj-1"])
        return String(token.dropLast(4)) + (token.hasSuffix("AAAA") ? "BBBB" : "AAAA")
    }

    static func refusalClient(_ cluster: ClusterHarness, tokens: TokenSource, recorder: Recorder) -> GatewayClient {
        var configuration = GatewayClient.Configuration(
            host: "127.0.0.1", port: cluster.node(0).port, path: "/ws"
        ) { tokens.next() }
        configuration.initialBackoff = .milliseconds(50)
        configuration.maximumBackoff = .milliseconds(200)
        let client = GatewayClient(configuration: configuration) { recorder.record($0) }
        client.start()
        return client
    }

    @Test("a token refused at the door (1008) is not retried forever: the same token again stops the client")
    func refusedTokenStops() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            let tokens = TokenSource([try await Self.forged(cluster, "alice")])
            let recorder = Recorder()
            let client = Self.refusalClient(cluster, tokens: tokens, recorder: recorder)
            let stopped = await eventually { recorder.gaveUp }
            await client.stop()
            #expect(stopped, "the client kept retrying a refused token: \(recorder.disconnects)")
            // One refusal with a retry (the token function's chance), then the end without a dial.
            #expect(recorder.disconnects.map(\.code) == [1008, 1008], "\(recorder.disconnects)")
            #expect(recorder.disconnects.first?.retryIn != nil)
            #expect(tokens.calls == 2, "the token function was asked \(tokens.calls) times")
            #expect(recorder.connections.isEmpty)
        }
    }

    @Test("after a refusal the token function's fresh token is tried: a valid one connects, a refused one stops")
    func freshTokenAfterRefusal() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            let good = try await cluster.token("alice", projects: ["proj-1"])
            let recovering = TokenSource([try await Self.forged(cluster, "alice"), good])
            let recorder = Recorder()
            let client = Self.refusalClient(cluster, tokens: recovering, recorder: recorder)
            let connected = await eventually { recorder.connections.count == 1 }
            await client.stop()
            #expect(connected, "a valid token after a refused one did not connect: \(recorder.disconnects)")
            #expect(recorder.disconnects.first?.code == 1008)

            let forgedTwice = TokenSource([
                try await Self.forged(cluster, "alice"), try await Self.forged(cluster, "bob"),
                good,
            ])
            let second = Recorder()
            let stubborn = Self.refusalClient(cluster, tokens: forgedTwice, recorder: second)
            let stopped = await eventually { second.gaveUp }
            await stubborn.stop()
            #expect(stopped, "a second refused token did not stop the client: \(second.disconnects)")
            #expect(forgedTwice.calls == 2, "asked for a third token after two refusals")
            #expect(second.connections.isEmpty)
        }
    }
}
