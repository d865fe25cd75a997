import AiravataClient
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Synchronization

/// A producer posting numbered `experiment_progress` events at a steady rate over several
/// lanes, each lane one request at a time (so its events are logged in sequence order),
/// keeping every answer with the moment it came.
final class PacedProducer: Sendable {
    struct Answer: Sendable {
        let sequence: Int
        let node: Int
        let status: Int
        let sent: ContinuousClock.Instant
        let at: ContinuousClock.Instant
    }

    /// How long one post may take before it counts as unanswered (status 0, not acknowledged).
    /// Longer than a node's Redis command timeout (5 s), so that an answer the node gives
    /// late is still seen.
    static let postTimeout: Duration = .seconds(10)

    let lanes: [Int]
    let experiment: String
    private let answers = Mutex<[Answer]>([])
    private let halted = Atomic<Bool>(false)

    /// - Parameter lanes: the node each lane posts to; lane `l` posts sequences `l`, `l + n`, `l + 2n` …
    init(lanes: [Int], experiment: String) {
        self.lanes = lanes
        self.experiment = experiment
    }

    var all: [Answer] { answers.withLock { $0 } }
    var acknowledged: Set<Int> { Set(all.filter { $0.status == 202 }.map(\.sequence)) }
    var acknowledgedCount: Int { answers.withLock { $0.count { $0.status == 202 } } }

    func halt() { halted.store(true, ordering: .relaxed) }

    /// Posts at `rate` events/s in total until `duration` passes or `halt()` is called.
    func run(_ fleet: GatewayFleet, rate: Int, duration: Duration) async throws {
        let token = try await fleet.token("producer", roles: ["service"])
        let clock = ContinuousClock()
        let start = clock.now
        let interval = Duration.seconds(lanes.count) / rate
        await withDiscardingTaskGroup { group in
            for (lane, node) in lanes.enumerated() {
                group.addTask {
                    var round = 0
                    while !self.halted.load(ordering: .relaxed), !Task.isCancelled, clock.now - start < duration {
                        // Pacing to the target rate, not waiting for an event.
                        try? await clock.sleep(until: start + interval * round)
                        let sequence = round * self.lanes.count + lane
                        let sent = clock.now
                        let status = await Self.post(
                            fleet, node, ClusterEvents.progress(experiment: self.experiment, sequence: sequence), token)
                        self.answers.withLock {
                            $0.append(Answer(sequence: sequence, node: node, status: status, sent: sent, at: clock.now))
                        }
                        round += 1
                    }
                }
            }
        }
    }

    static func post(_ fleet: GatewayFleet, _ node: Int, _ event: JSONValue, _ token: String) async -> Int {
        await withTaskGroup(of: Int?.self) { group in
            group.addTask { await fleet.post(node, event, token: token) }
            group.addTask {
                try? await Task.sleep(for: postTimeout)
                return nil
            }
            defer { group.cancelAll() }
            return (await group.next() ?? nil) ?? 0
        }
    }
}

/// What the clients of a test saw, judged against what the producer was told.
struct DeliveryVerdict {
    var silentLosses: [String] = []
    var duplicates: [String] = []
    var disorder: [String] = []
    var toldRecoveryFailed = 0

    /// - Parameters:
    ///   - acknowledged: every sequence that was answered 202.
    ///   - lanes: the producer's lane count: within one lane, sequences must arrive in order.
    ///   - final: the closing sequence, excluded from the count.
    init(clients: [SwiftClientTests.Recorder], acknowledged: Set<Int>, lanes: Int, final: Int) {
        for (index, recorder) in clients.enumerated() {
            let received = recorder.sequence.filter { $0 != final }
            let distinct = Set(received)
            if distinct.count != received.count {
                let repeated = Dictionary(grouping: received, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
                duplicates.append("client \(index): \(repeated.count) events twice, first \(repeated.prefix(5))")
            }
            for lane in 0..<lanes {
                let ordered = received.filter { $0 % lanes == lane }
                if ordered != ordered.sorted() {
                    disorder.append("client \(index) lane \(lane)")
                    break
                }
            }
            let missing = acknowledged.subtracting(distinct).sorted()
            if !recorder.failures.isEmpty { toldRecoveryFailed += 1 }
            if !missing.isEmpty, recorder.failures.isEmpty {
                silentLosses.append(
                    "client \(index): \(missing.count) acknowledged events never came and no recovery_failed "
                        + "(first \(missing.prefix(5)); connections \(recorder.connections))")
            }
        }
    }
}

/// Per node: when `/readyz` stopped answering 200 and when it answered 200 again.
final class ReadinessWatch: Sendable {
    struct Spell: Sendable {
        var from: ContinuousClock.Instant
        var until: ContinuousClock.Instant?
    }

    /// How often each node is asked.
    static let interval: Duration = .milliseconds(100)

    private let spells = Mutex<[Int: [Spell]]>([:])
    private let stopped = Atomic<Bool>(false)

    func stop() { stopped.store(true, ordering: .relaxed) }

    func spells(of node: Int) -> [Spell] { spells.withLock { $0[node] ?? [] } }

    func isReady(_ node: Int) -> Bool { spells(of: node).last.map { $0.until != nil } ?? true }

    func run(_ fleet: GatewayFleet, nodes: [Int]) async {
        let clock = ContinuousClock()
        while !stopped.load(ordering: .relaxed), !Task.isCancelled {
            for node in nodes {
                let ready = await fleet.readiness(node) == 200
                let now = clock.now
                spells.withLock { spells in
                    var list = spells[node] ?? []
                    if !ready, list.last.map({ $0.until != nil }) ?? true {
                        list.append(Spell(from: now, until: nil))
                    } else if ready, let last = list.last, last.until == nil {
                        list[list.count - 1].until = now
                    }
                    spells[node] = list
                }
            }
            try? await clock.sleep(for: Self.interval)
        }
    }
}

extension Duration {
    /// Seconds with one decimal, for the timings the tests print.
    var seconds: String {
        let (whole, attoseconds) = components
        return String(format: "%.1f", Double(whole) + Double(attoseconds) / 1e18)
    }
}
