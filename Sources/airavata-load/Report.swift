import AiravataProtocol
import Foundation
import Synchronization

/// The verdict of a run: every count the rolling-upgrade test asks for.
struct Report {
    var clients = 0
    var published = 0
    var expected = 0
    var received = 0
    var lost = 0
    var duplicated = 0
    var producerDuplicates = 0
    var outOfOrder = 0
    var subscriptionsLost = 0
    var reconnects = 0
    /// Clients that connected more than once: a rolling upgrade must move every client.
    var clientsReconnected = 0
    var resumed = 0
    var recoveryFailures = 0
    var producerRetries = 0
    var producerGaveUp = 0
    var reconnectP50: Double?
    var reconnectP99: Double?

    var passed: Bool { lost == 0 && duplicated == 0 && outOfOrder == 0 && subscriptionsLost == 0 }

    /// Waits (bounded) until every client has every event of its experiment, probes for lost
    /// subscriptions, and counts.
    static func collect(
        subscribers: [Subscriber],
        published: Publisher.Published,
        publisher: Publisher,
        experiments: [String],
        settleSeconds: Double
    ) async -> Report {
        var expectedByExperiment: [Int: Set<Int>] = [:]
        for (sequence, experiment) in published.experiment {
            expectedByExperiment[experiment, default: []].insert(sequence)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(settleSeconds * 1000))
        func complete() -> Bool {
            subscribers.allSatisfy { subscriber in
                let expected = expectedByExperiment[subscriber.experiment] ?? []
                let got = subscriber.tally.state.withLock { Set($0.sequence) }
                return expected.isSubset(of: got)
            }
        }
        while !complete(), clock.now < deadline { try? await Task.sleep(for: .milliseconds(100)) }

        // One probe per experiment: a client that does not get its probe lost its subscription.
        for (index, experiment) in experiments.enumerated() {
            var attempts = 0
            while attempts < 100 {
                attempts += 1
                if case .accepted = await publisher.post(
                    Publisher.progress(experiment: experiment, sequence: -index - 1, probe: true))
                {
                    break
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        let probeDeadline = clock.now + .seconds(10)
        while subscribers.contains(where: { !$0.tally.state.withLock { $0.probed } }), clock.now < probeDeadline {
            try? await Task.sleep(for: .milliseconds(50))
        }

        var report = Report()
        report.clients = subscribers.count
        report.published = published.count
        report.producerRetries = published.retries
        report.producerGaveUp = published.givenUp.count
        var reconnectTimes: [Double] = []
        for subscriber in subscribers {
            let expected = expectedByExperiment[subscriber.experiment] ?? []
            let state = subscriber.tally.state.withLock { $0 }
            report.expected += expected.count
            let relevant = state.sequence.filter { expected.contains($0) }
            report.received += relevant.count
            let unique = Set(relevant)
            report.lost += expected.subtracting(unique).count
            var seen = Set<Int>()
            for number in relevant where !seen.insert(number).inserted {
                if published.ambiguous.contains(number) {
                    report.producerDuplicates += 1
                } else {
                    report.duplicated += 1
                }
            }
            var highest = Int.min
            for number in relevant {
                if number < highest { report.outOfOrder += 1 } else { highest = number }
            }
            if !state.probed { report.subscriptionsLost += 1 }
            report.reconnects += max(0, state.connections - 1)
            if state.connections > 1 { report.clientsReconnected += 1 }
            report.resumed += state.resumed
            report.recoveryFailures += state.recoveryFailures.count
            reconnectTimes += state.reconnectSeconds
        }
        report.received -= report.producerDuplicates
        report.reconnectP50 = percentile(reconnectTimes, 0.5)
        report.reconnectP99 = percentile(reconnectTimes, 0.99)
        return report
    }

    func print() {
        func milliseconds(_ seconds: Double?) -> String { seconds.map { String(format: "%.0f ms", $0 * 1000) } ?? "-" }
        say(
            """
            clients              \(clients)
            events published     \(published)  (producer retries \(producerRetries), gave up \(producerGaveUp))
            events expected      \(expected)
            events received      \(received)
            lost                 \(lost)
            duplicated           \(duplicated)  (plus \(producerDuplicates) from ambiguous producer retries)
            out of order         \(outOfOrder)
            subscriptions lost   \(subscriptionsLost)
            reconnects           \(reconnects)  (clients \(clientsReconnected), resumed \(resumed), recovery failures \(recoveryFailures))
            reconnect time       p50 \(milliseconds(reconnectP50)), p99 \(milliseconds(reconnectP99))
            verdict              \(passed ? "PASS" : "FAIL")
            """)
        let summary: JSONValue = .object([
            "clients": .integer(clients), "published": .integer(published), "expected": .integer(expected),
            "received": .integer(received), "lost": .integer(lost), "duplicated": .integer(duplicated),
            "producerDuplicates": .integer(producerDuplicates), "outOfOrder": .integer(outOfOrder),
            "subscriptionsLost": .integer(subscriptionsLost), "reconnects": .integer(reconnects),
            "clientsReconnected": .integer(clientsReconnected), "producerRetries": .integer(producerRetries),
            "producerGaveUp": .integer(producerGaveUp),
            "resumed": .integer(resumed), "recoveryFailures": .integer(recoveryFailures),
            "reconnectP50Ms": reconnectP50.map { .double(($0 * 1000).rounded()) } ?? .null,
            "reconnectP99Ms": reconnectP99.map { .double(($0 * 1000).rounded()) } ?? .null,
            "passed": .bool(passed),
        ])
        say(summary.jsonString)
    }
}
