/// Delivery latency (acceptance to hand-off to the connections) as counts per bucket: what
/// Prometheus exports, what nodes share for the cluster's recent percentiles, and what
/// `system_status` reports as the last minute's mean.
package struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in microseconds, from a quarter millisecond to ten seconds: a real-time
    /// gateway lives in the first half; the rest tells how bad a bad minute was.
    package static let boundsMicros: [Int64] = [
        250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
        5_000_000, 10_000_000,
    ]
    /// One count per bound, and a last one for everything slower.
    package static var bucketCount: Int { boundsMicros.count + 1 }

    /// Not cumulative: `counts[i]` holds the samples between bound `i - 1` and bound `i`.
    package private(set) var counts: [Int]
    package private(set) var sumMicros: Int

    package init() {
        counts = Array(repeating: 0, count: Self.bucketCount)
        sumMicros = 0
    }

    /// Largest count or sum accepted from outside: far beyond any real node's, and small
    /// enough that summing thousands of reports cannot overflow.
    package static let maximumValue = 1 << 50

    package init?(counts: [Int], sumMicros: Int) {
        guard counts.count == Self.bucketCount, counts.allSatisfy({ (0...Self.maximumValue).contains($0) }),
            (0...Self.maximumValue).contains(sumMicros)
        else { return nil }
        self.counts = counts
        self.sumMicros = sumMicros
    }

    package var total: Int { counts.reduce(0) { Self.saturated($0, $1) } }

    package var meanSeconds: Double {
        let total = total
        return total == 0 ? 0 : Double(sumMicros) / Double(total) / 1e6
    }

    package static func bucket(forMicros micros: Int64) -> Int {
        var low = 0
        var high = boundsMicros.count
        while low < high {
            let middle = (low + high) / 2
            if micros <= boundsMicros[middle] { high = middle } else { low = middle + 1 }
        }
        return low
    }

    package mutating func record(micros: Int64) {
        counts[Self.bucket(forMicros: micros)] &+= 1
        sumMicros = Self.saturated(sumMicros, Int(max(0, micros)))
    }

    /// The latency below which `fraction` of the samples fall, interpolated within its bucket;
    /// 0 without samples. Samples beyond the last bound report that bound.
    package func quantileSeconds(_ fraction: Double) -> Double {
        let total = total
        guard total > 0 else { return 0 }
        let rank = max(1, (fraction * Double(total)).rounded(.up))
        var seen = 0.0
        for (index, count) in counts.enumerated() where count > 0 {
            if seen + Double(count) >= rank {
                guard index < Self.boundsMicros.count else { return Double(Self.boundsMicros.last ?? 0) / 1e6 }
                let lower = index == 0 ? 0 : Double(Self.boundsMicros[index - 1])
                let upper = Double(Self.boundsMicros[index])
                return (lower + (upper - lower) * (rank - seen) / Double(count)) / 1e6
            }
            seen += Double(count)
        }
        return Double(Self.boundsMicros.last ?? 0) / 1e6
    }

    /// What was added between `earlier` and this (both cumulative); never negative.
    package func since(_ earlier: LatencyHistogram) -> LatencyHistogram {
        var difference = LatencyHistogram()
        for index in counts.indices { difference.counts[index] = max(0, counts[index] - earlier.counts[index]) }
        difference.sumMicros = max(0, sumMicros - earlier.sumMicros)
        return difference
    }

    package static func + (left: LatencyHistogram, right: LatencyHistogram) -> LatencyHistogram {
        var sum = left
        for index in sum.counts.indices { sum.counts[index] = saturated(sum.counts[index], right.counts[index]) }
        sum.sumMicros = saturated(sum.sumMicros, right.sumMicros)
        return sum
    }

    private static func saturated(_ left: Int, _ right: Int) -> Int {
        let (sum, overflow) = left.addingReportingOverflow(right)
        return overflow ? Int.max : sum
    }

    /// `c0,c1,…,c15;sum`: how a node stores it in its Redis report.
    package var encoded: String {
        counts.map(String.init).joined(separator: ",") + ";" + String(sumMicros)
    }

    /// Longest text `init(encoded:)` reads: sixteen 19-digit counts, a sum and separators.
    package static let maximumEncodedLength = 400

    /// Reads `encoded` back; nil for anything else (another node's newer or broken report).
    package init?(encoded text: String) {
        guard text.utf8.count <= Self.maximumEncodedLength else { return nil }
        let halves = text.split(separator: ";", omittingEmptySubsequences: false)
        guard halves.count == 2, let sum = Int(halves[1]) else { return nil }
        let fields = halves[0].split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count == Self.bucketCount else { return nil }
        var counts: [Int] = []
        counts.reserveCapacity(fields.count)
        for field in fields {
            guard let count = Int(field) else { return nil }
            counts.append(count)
        }
        self.init(counts: counts, sumMicros: sum)
    }
}
