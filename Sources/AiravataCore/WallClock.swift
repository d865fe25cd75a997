import Foundation

/// Wall-clock time for timestamps and ids; monotonic time comes from NIO where needed.
package enum WallClock {
    package static func nowMicros() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
    }
}
