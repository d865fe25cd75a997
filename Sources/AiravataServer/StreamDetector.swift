/// Tells, from the times a connection's frames are sent, whether it is being streamed to:
/// `TCPNoDelay.auto` runs a streamed connection's socket with Nagle's algorithm and every
/// other socket with `TCP_NODELAY`.
///
/// With `TCP_NODELAY` every send is a TCP segment; in fan-out that is most of a node's CPU
/// (the kernel's cost per segment). With Nagle the kernel sends a small frame at once when
/// nothing is unacknowledged and otherwise holds it until the acknowledgement comes, then
/// sends everything held in one segment. No frame waits for a later one: it waits at most
/// for the acknowledgement of an earlier one. A connection that sends requests and gets
/// answers, or gets an event now and then, never streams here and keeps `TCP_NODELAY`, so
/// the classic wait (a frame held for a delayed ACK right after another) cannot hit it.
///
/// A connection streams after `streak` sends in a row, each within `closeGapNanos` of the
/// one before, while its client has sent nothing for `quietNanos`. It stops streaming at the
/// first send after `quietNanos` with none, and as soon as the client sends a frame: a
/// client that talks while it receives keeps its own acknowledgements back to ride on its
/// next frame (the kernel's interactive mode), and with Nagle every frame to it would wait
/// for that. Pure: the caller reads the clock and sets the socket.
package struct StreamDetector {
    /// When a connection is said to be streamed to.
    package struct Thresholds: Sendable, Equatable {
        /// Sends this close together count toward a streak: 20 ms, 50 sends a second.
        package var closeGapNanos: UInt64 = 20_000_000
        /// Sends in a streak before the connection streams. A burst of status events for one
        /// experiment (a handful) leaves frame by frame.
        package var streak: UInt32 = 8
        /// No send for this long and the connection is interactive again.
        package var quietNanos: UInt64 = 500_000_000

        package init() {}

        package init(closeGapNanos: UInt64, streak: UInt32, quietNanos: UInt64) {
            self.closeGapNanos = closeGapNanos
            self.streak = max(1, streak)
            self.quietNanos = max(quietNanos, closeGapNanos)
        }
    }

    /// What the socket should do before this send.
    package enum Change: Equatable {
        case none
        /// Turn `TCP_NODELAY` off: the connection is streamed to.
        case startStreaming
        /// Turn `TCP_NODELAY` on again: the connection went quiet, or its client spoke.
        case stopStreaming
    }

    private var lastNanos: UInt64?
    /// When the client last sent a frame.
    private var heardNanos: UInt64?
    private var run: UInt32 = 0
    package private(set) var streaming = false

    /// - Parameter heardNanos: when the client last sent a frame, if it has.
    package init(heardNanos: UInt64? = nil) {
        self.heardNanos = heardNanos
    }

    /// Notes a send at `nowNanos` (monotonic) and says whether the socket should change first.
    package mutating func send(at nowNanos: UInt64, _ thresholds: Thresholds) -> Change {
        defer { lastNanos = nowNanos }
        guard let last = lastNanos else { return .none }
        let gap = nowNanos &- last
        if streaming {
            guard gap >= thresholds.quietNanos else { return .none }
            streaming = false
            run = 0
            return .stopStreaming
        }
        guard gap < thresholds.closeGapNanos else {
            run = 0
            return .none
        }
        // The first send of a streak has no gap before it that counts: `run` counts the
        // close gaps, so `streak` sends make `streak - 1` of them.
        run = min(run + 1, thresholds.streak)
        guard run + 1 >= thresholds.streak else { return .none }
        // A streak while the client talks: it starts once the client has been quiet.
        if let heard = heardNanos, nowNanos &- heard < thresholds.quietNanos { return .none }
        streaming = true
        run = 0
        return .startStreaming
    }

    /// Notes a frame from the client at `nowNanos`: the connection is interactive.
    package mutating func heard(at nowNanos: UInt64) -> Change {
        heardNanos = nowNanos
        run = 0
        guard streaming else { return .none }
        streaming = false
        return .stopStreaming
    }
}
