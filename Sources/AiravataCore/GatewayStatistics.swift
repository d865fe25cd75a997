import Synchronization

/// This node's counters, updated on the hot path without locks.
package final class GatewayStatistics: Sendable {
    private let totalConnections = Atomic<Int>(0)
    private let activeConnections = Atomic<Int>(0)
    private let totalMessages = Atomic<Int>(0)
    private let eventsAccepted = Atomic<Int>(0)
    private let deliveries = Atomic<Int>(0)
    private let latencyMicrosSum = Atomic<Int>(0)
    /// One count per `LatencyHistogram` bucket, taken without a lock on the delivery path.
    private let latencyBuckets: InlineArray<16, Atomic<Int>> = InlineArray { _ in Atomic(0) }
    private let resumesRecovered = Atomic<Int>(0)
    private let resumesFailed = Atomic<Int>(0)
    package let startedAtMicros: Int64
    private let rateWindow: Mutex<(micros: Int64, messages: Int, rate: Double)>
    package let nodeID: String

    package init(nodeID: String, nowMicros: Int64 = WallClock.nowMicros()) {
        self.nodeID = nodeID
        self.startedAtMicros = nowMicros
        self.rateWindow = Mutex((nowMicros, 0, 0))
        // Until a window has passed, the recent figures are those since the start.
        self.samples = Mutex([Sample(micros: nowMicros, latency: LatencyHistogram(), deliveries: 0)])
    }

    package func connectionOpened() {
        totalConnections.add(1, ordering: .relaxed)
        activeConnections.add(1, ordering: .relaxed)
    }

    package func connectionClosed() {
        activeConnections.subtract(1, ordering: .relaxed)
    }

    /// Every event that reached this node is routed; only those with recipients have a
    /// delivery latency.
    package func eventRouted(latencyMicros: Int64, recipients: Int) {
        totalMessages.add(1, ordering: .relaxed)
        guard recipients > 0 else { return }
        deliveries.add(recipients, ordering: .relaxed)
        latencyMicrosSum.add(Int(max(0, latencyMicros)), ordering: .relaxed)
        latencyBuckets[LatencyHistogram.bucket(forMicros: latencyMicros)].add(1, ordering: .relaxed)
    }

    /// Delivery latency since the node started.
    package var latency: LatencyHistogram {
        var counts: [Int] = []
        counts.reserveCapacity(LatencyHistogram.bucketCount)
        for index in 0..<LatencyHistogram.bucketCount { counts.append(latencyBuckets[index].load(ordering: .relaxed)) }
        return LatencyHistogram(counts: counts, sumMicros: latencyMicrosSum.load(ordering: .relaxed))
            ?? LatencyHistogram()
    }

    /// A client asked to resume; `recovered` when it got every event it missed.
    package func resumed(recovered: Bool) {
        if recovered {
            resumesRecovered.add(1, ordering: .relaxed)
        } else {
            resumesFailed.add(1, ordering: .relaxed)
        }
    }

    package var resumes: (recovered: Int, failed: Int) {
        (resumesRecovered.load(ordering: .relaxed), resumesFailed.load(ordering: .relaxed))
    }

    package var active: Int { activeConnections.load(ordering: .relaxed) }

    /// Event frames handed to this node's connections since it started.
    package var delivered: Int { deliveries.load(ordering: .relaxed) }

    /// The latest statistics write to a shared store, in microseconds; -1 before the first.
    private let storeRoundTripMicros = Atomic<Int>(-1)

    package func storeRoundTrip(micros: Int) { storeRoundTripMicros.store(micros, ordering: .relaxed) }

    /// One Redis round trip as this node saw it last (its statistics write); nil without Redis.
    package var storeRoundTripSeconds: Double? {
        let micros = storeRoundTripMicros.load(ordering: .relaxed)
        return micros < 0 ? nil : Double(micros) / 1e6
    }

    /// Events this node accepted through its ingestion API.
    package func eventsAccepted(_ count: Int) {
        eventsAccepted.add(count, ordering: .relaxed)
    }

    /// Events routed on this node (with a shared bus, every node routes every event).
    package var routed: Int { totalMessages.load(ordering: .relaxed) }

    /// How far back the recent figures (latency percentiles, `averageLatency`) look.
    package static let windowSeconds: Double = 60

    /// The cumulative figures the recent window is measured against.
    private struct Sample {
        var micros: Int64
        var latency: LatencyHistogram
        var deliveries: Int
    }

    /// One sample a second at most, the oldest about a window old: at most ~62 entries.
    private let samples: Mutex<[Sample]>
    private let statusProvider = Mutex<@Sendable () -> NodeStatus>({ NodeStatus() })

    /// The server layer's view of this node (lifecycle, Redis, counters), read into each report.
    package func setStatusProvider(_ provider: @escaping @Sendable () -> NodeStatus) {
        statusProvider.withLock { $0 = provider }
    }

    /// The rate is averaged since the previous snapshot taken at least a second ago.
    package func snapshot(nowMicros: Int64 = WallClock.nowMicros()) -> StatisticsSnapshot {
        StatisticsSnapshot.aggregate([report(nowMicros: nowMicros)], nodeID: nodeID, nowMicros: nowMicros)
    }

    /// This node's figures for the cluster statistics.
    package func report(nowMicros: Int64 = WallClock.nowMicros()) -> NodeReport {
        let messages = eventsAccepted.load(ordering: .relaxed)
        let rate = rateWindow.withLock { window in
            let elapsed = Double(nowMicros - window.micros) / 1_000_000
            if elapsed >= 1 {
                window.rate = Double(messages - window.messages) / elapsed
                window.micros = nowMicros
                window.messages = messages
            }
            return window.rate
        }
        let current = Sample(
            micros: nowMicros, latency: latency, deliveries: deliveries.load(ordering: .relaxed))
        let (oldest, previous) = samples.withLock { samples in
            if samples.isEmpty || nowMicros - (samples.last?.micros ?? 0) >= 1_000_000 {
                samples.append(current)
            }
            let horizon = nowMicros - Int64(Self.windowSeconds * 1_000_000)
            while samples.count > 1, samples[1].micros <= horizon { samples.removeFirst() }
            // The newest sample at least a second old: rates over the last second or so.
            let previous = samples.last { nowMicros - $0.micros >= 1_000_000 } ?? samples.first ?? current
            return (samples.first ?? current, previous)
        }
        var report = NodeReport(
            nodeID: nodeID,
            startedAtMicros: startedAtMicros,
            activeConnections: activeConnections.load(ordering: .relaxed),
            totalConnections: totalConnections.load(ordering: .relaxed),
            eventsAccepted: messages,
            acceptRate: rate,
            deliveries: current.deliveries
        )
        let elapsed = Double(nowMicros - previous.micros) / 1_000_000
        report.deliveryRate = elapsed > 0 ? Double(current.deliveries - previous.deliveries) / elapsed : 0
        report.routed = totalMessages.load(ordering: .relaxed)
        report.recentLatency = current.latency.since(oldest.latency)
        report.recentSeconds = Double(nowMicros - oldest.micros) / 1_000_000
        report.status = statusProvider.withLock { $0 }()
        report.reportedAtMicros = nowMicros
        return report
    }
}
