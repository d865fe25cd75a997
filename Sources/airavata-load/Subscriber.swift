import AiravataClient
import AiravataCore
import AiravataProtocol
import Foundation
import NIOCore
import Synchronization

/// One client and what it received.
final class Subscriber: Sendable {
    let index: Int
    let experiment: Int
    let explicit: Bool
    let client: GatewayClient
    let tally: Tally

    private init(index: Int, experiment: Int, explicit: Bool, client: GatewayClient, tally: Tally) {
        self.index = index
        self.experiment = experiment
        self.explicit = explicit
        self.client = client
        self.tally = tally
    }

    /// Connects `count` clients, `concurrency` at a time, and returns once each is subscribed.
    static func connectAll(
        count: Int,
        experiments: [String],
        url: String,
        issuer: TokenIssuer,
        resume: Bool,
        concurrency: Int,
        group: any EventLoopGroup
    ) async throws -> [Subscriber] {
        var subscribers: [Subscriber] = []
        var start = 0
        while start < count {
            let batch = start..<min(start + max(concurrency, 1), count)
            try await withThrowingTaskGroup(of: Subscriber.self) { tasks in
                for index in batch {
                    tasks.addTask {
                        try await connect(
                            index: index, experiments: experiments, url: url, issuer: issuer, resume: resume,
                            group: group)
                    }
                }
                for try await subscriber in tasks { subscribers.append(subscriber) }
            }
            start = batch.upperBound
        }
        return subscribers.sorted { $0.index < $1.index }
    }

    private static func connect(
        index: Int,
        experiments: [String],
        url: String,
        issuer: TokenIssuer,
        resume: Bool,
        group: any EventLoopGroup
    ) async throws -> Subscriber {
        let experiment = index % experiments.count
        // Alternate: half listen through the URL path, half through a subscribe message.
        let explicit = index % 2 == 1
        let path = explicit ? "/ws" : "/ws/experiments/\(experiments[experiment])"
        let token = try await issuer.token(subject: "load-user-\(index)", projects: [Tally.project], lifetime: 86_400)
        var configuration = try GatewayClient.Configuration(url: url + path, group: group) { token }
        configuration.resume = resume
        configuration.initialBackoff = .milliseconds(100)
        configuration.maximumBackoff = .seconds(2)
        let tally = Tally(explicit: explicit)
        let client = GatewayClient(configuration: configuration) { tally.record($0) }
        if explicit { client.subscribe(.init(.experiment, experiments[experiment])) }
        client.start()
        guard await tally.waitUntilReady(timeout: .seconds(60)) else {
            await client.stop()
            throw GatewayClientError("client \(index) was not subscribed within 60 s")
        }
        return Subscriber(index: index, experiment: experiment, explicit: explicit, client: client, tally: tally)
    }
}

/// What one client saw: the event numbers in arrival order, probes, reconnects and their timing.
final class Tally: Sendable {
    static let project = "load-project"

    struct State {
        var ready = false
        var readyWaiter: CheckedContinuation<Bool, Never>?
        var sequence: [Int] = []
        var probed = false
        var connections = 0
        var resumed = 0
        var recoveryFailures: [String] = []
        var disconnectedAt: ContinuousClock.Instant?
        var reconnectSeconds: [Double] = []
    }

    let explicit: Bool
    let state = Mutex(State())

    init(explicit: Bool) {
        self.explicit = explicit
    }

    func record(_ event: GatewayClient.Event) {
        let now = ContinuousClock.now
        var waiter: CheckedContinuation<Bool, Never>?
        state.withLock { state in
            switch event {
            case .connected(_, _, let resumed):
                state.connections += 1
                if resumed { state.resumed += 1 }
                if let since = state.disconnectedAt {
                    let elapsed = since.duration(to: now).components
                    state.reconnectSeconds.append(Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18)
                    state.disconnectedAt = nil
                }
                if !explicit, !state.ready {
                    state.ready = true
                    waiter = state.readyWaiter
                    state.readyWaiter = nil
                }
            case .message(let envelope):
                if envelope.type == "experiment_progress", let data = envelope.data,
                    case .number(let text)? = data["completedTasks"], let number = Int(text)
                {
                    if data["probe"] == .bool(true) { state.probed = true } else { state.sequence.append(number) }
                } else if explicit, !state.ready, envelope.data?["action"]?.stringValue == "subscribed" {
                    state.ready = true
                    waiter = state.readyWaiter
                    state.readyWaiter = nil
                }
            case .recoveryFailed(let reason):
                state.recoveryFailures.append(reason)
            case .disconnected:
                if state.disconnectedAt == nil { state.disconnectedAt = now }
            case .replayComplete:
                break
            }
        }
        waiter?.resume(returning: true)
    }

    func waitUntilReady(timeout: Duration) async -> Bool {
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                defer { state.readyWaiter = nil }
                return state.readyWaiter
            }
            waiter?.resume(returning: false)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.ready { return true }
                state.readyWaiter = continuation
                return false
            }
            if ready { continuation.resume(returning: true) }
        }
    }
}
