import Foundation

/// Wall-clock time for timestamps and ids, and a monotonic clock for expiry.
package enum WallClock {
    package static func nowMicros() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
    }

    /// Nanoseconds on a clock that never jumps, for expiry and intervals.
    package static func monotonicNanos() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds
    }
}
