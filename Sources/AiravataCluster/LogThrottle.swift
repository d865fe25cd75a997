import NIOCore
import Synchronization

/// Lets a warning about bad input through at most once per interval, so that a flood of
/// bad messages from Redis cannot flood the log; the next warning says how many it hid.
final class LogThrottle: Sendable {
    private struct State {
        var nextNanos: UInt64 = 0
        var suppressed = 0
    }

    private let intervalNanos: UInt64
    private let state = Mutex(State())

    init(interval: Duration) {
        let (seconds, attoseconds) = interval.components
        intervalNanos = UInt64(max(seconds, 0)) * 1_000_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000)
    }

    /// The number of warnings suppressed since the last one, or nil to stay quiet.
    func permit(nowNanos: UInt64 = NIODeadline.now().uptimeNanoseconds) -> Int? {
        state.withLock { state in
            guard nowNanos >= state.nextNanos else {
                state.suppressed += 1
                return nil
            }
            state.nextNanos = nowNanos + intervalNanos
            defer { state.suppressed = 0 }
            return state.suppressed
        }
    }

    /// Printable ASCII as is, everything else as `\xNN`, so that bytes from Redis cannot
    /// forge log lines or terminal escapes.
    static func escaped(_ bytes: some Sequence<UInt8>) -> String {
        var text = ""
        for byte in bytes {
            if (0x20..<0x7F).contains(byte), byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return text
    }
}
