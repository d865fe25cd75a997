import AiravataCore

@testable import AiravataClusterReport

/// Another node's statistics report as read back from its Redis hash: the dashboard and
/// `system_status` show what it says, so no field of it is trusted.
///
/// Input: lines of `name<TAB>value`, the hash's fields. Invariants: reading never traps;
/// text fields shown to operators are at most `maximumFieldLength` bytes; at most
/// `maximumFigures` figures, none negative; a latency histogram read from text has every
/// count and its sum within `LatencyHistogram.maximumValue`, prints back to text that reads
/// back to it, gives percentiles within its bounds, and merges with itself without trapping.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzNodeReport(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    var fields: [String: String] = [:]
    for line in input.split(separator: "\n") {
        let parts = line.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
        if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
    }
    let report = NodeReportFields.report(fields)
    let limit = NodeReportFields.maximumFieldLength
    for shown in [report.nodeID, report.status.state, report.status.redis, report.status.version] {
        invariant(shown.count <= limit, "a text field of \(shown.utf8.count) bytes from \(input.debugDescription)")
    }
    invariant(report.status.figures.count <= NodeReportFields.maximumFigures, "too many figures")
    invariant(report.status.figures.values.allSatisfy { $0 >= 0 }, "a negative figure")
    check(report.recentLatency)
    if let histogram = LatencyHistogram(encoded: input) { check(histogram) }
    return 0
}

private func check(_ histogram: LatencyHistogram) {
    invariant(histogram.counts.count == LatencyHistogram.bucketCount, "\(histogram.counts.count) buckets")
    invariant(
        histogram.counts.allSatisfy { (0...LatencyHistogram.maximumValue).contains($0) }
            && (0...LatencyHistogram.maximumValue).contains(histogram.sumMicros), "a value out of bounds")
    invariant(LatencyHistogram(encoded: histogram.encoded) == histogram, "\(histogram.encoded) does not read back")
    let ceiling = Double(LatencyHistogram.boundsMicros.last ?? 0) / 1e6
    for fraction in [0.0, 0.5, 0.99, 1.0] {
        let quantile = histogram.quantileSeconds(fraction)
        invariant(quantile >= 0 && quantile <= ceiling, "quantile \(fraction) is \(quantile)")
    }
    let doubled = histogram + histogram
    invariant(doubled.total >= histogram.total, "merging lost samples")
    invariant(histogram.meanSeconds.isFinite, "mean is not finite")
}
