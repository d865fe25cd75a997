/// How long, and for how many ids, the bus remembers producers' event ids, so that a
/// retried POST is not delivered twice (`--dedup-window`, `--dedup-ids`).
package struct Deduplication: Sendable, Equatable {
    /// Default of `--dedup-window`: longer than any sensible retry schedule of a producer.
    package static let defaultWindowMillis: Int64 = 10 * 60 * 1000
    /// Default of `--dedup-ids`. At 256 bytes per id at most, about 40 MB in the worst case
    /// (in the node, or in Redis); a typical 40-byte id costs a tenth of that.
    package static let defaultCapacity = 100_000

    /// How long an accepted id is remembered; 0 turns deduplication off.
    package var windowMillis: Int64
    /// Most ids remembered: past it the oldest are forgotten before their window ends, so
    /// that memory stays bounded whatever the rate of events.
    package var capacity: Int

    package init(windowMillis: Int64 = Self.defaultWindowMillis, capacity: Int = Self.defaultCapacity) {
        self.windowMillis = windowMillis
        self.capacity = capacity
    }

    package var isEnabled: Bool { windowMillis > 0 && capacity > 0 }
}

/// What publishing one event came to.
package struct Publication: Sendable, Equatable {
    /// The event's cursor; for a duplicate, the cursor its id was first accepted with.
    package var cursor: String
    /// The producer's id was already accepted within the window: nothing was published.
    package var duplicate: Bool

    package init(cursor: String, duplicate: Bool = false) {
        self.cursor = cursor
        self.duplicate = duplicate
    }
}
