/// The producer ids the embedded bus accepted within the deduplication window, oldest
/// first. A value type driven by an explicit clock, so that expiry is tested without waiting.
package struct RecentProducerIDs: Sendable {
    private struct Entry {
        var cursor: String
        var acceptedAtMillis: Int64
    }

    private let policy: Deduplication
    private var entries: [String: Entry] = [:]
    /// Acceptance order; `head` is the oldest still remembered (advanced, not removed, so that
    /// expiry is O(1) per id; the array is compacted once half of it is spent).
    private var order: [(id: String, acceptedAtMillis: Int64)] = []
    private var head = 0
    /// Spent entries at the front of `order` before it may be compacted: compacting copies
    /// the live half, so it happens once per many ids, never per id.
    private static let compactAfter = 1024

    package init(policy: Deduplication) {
        self.policy = policy
    }

    package var count: Int { entries.count }

    /// The cursor `id` was accepted with, if that was within the window.
    package mutating func cursor(of id: String, nowMillis: Int64) -> String? {
        forgetExpired(nowMillis: nowMillis)
        return entries[id]?.cursor
    }

    /// Remembers `id` as accepted now with `cursor`, forgetting the oldest beyond capacity.
    package mutating func remember(_ id: String, cursor: String, nowMillis: Int64) {
        entries[id] = Entry(cursor: cursor, acceptedAtMillis: nowMillis)
        order.append((id, nowMillis))
        forgetExpired(nowMillis: nowMillis)
    }

    private mutating func forgetExpired(nowMillis: Int64) {
        while head < order.count,
            order.count - head > policy.capacity || order[head].acceptedAtMillis <= nowMillis - policy.windowMillis
        {
            let oldest = order[head]
            // An id accepted again after it expired has a newer entry: leave that one.
            if entries[oldest.id]?.acceptedAtMillis == oldest.acceptedAtMillis { entries[oldest.id] = nil }
            head += 1
        }
        if head > Self.compactAfter, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
