/// Something with a place in the replay log.
package protocol CursorPositioned {
    var cursor: EventCursor { get }
}

extension EventCursor: CursorPositioned {
    package var cursor: EventCursor { self }
}

/// The newest `capacity` entries of a log, in cursor order: appends at the end drop the
/// oldest, and lookups by cursor are binary searches. Not thread-safe; keep it under a lock.
package struct CursorRing<Element: CursorPositioned> {
    private var storage: [Element] = []
    /// Entries before this index have fallen out; they are removed in bulk now and then
    /// instead of shifting the array on every append.
    private var first = 0
    package let capacity: Int

    package init(capacity: Int) {
        self.capacity = max(capacity, 1)
    }

    /// What the ring holds, oldest first.
    package var entries: ArraySlice<Element> { storage[first...] }

    package var newest: Element? { first < storage.count ? storage.last : nil }

    package mutating func append(_ element: Element) {
        if storage.count - first >= capacity {
            first += 1
            if first >= capacity {
                storage.removeFirst(first)
                first = 0
            }
        }
        storage.append(element)
    }

    /// The position of the entry with exactly this cursor, if the ring holds it.
    package func position(of cursor: EventCursor) -> Int? {
        let held = entries
        var low = held.startIndex
        var high = held.endIndex
        while low < high {
            let middle = (low + high) / 2
            if held[middle].cursor < cursor { low = middle + 1 } else { high = middle }
        }
        return low < held.endIndex && held[low].cursor == cursor ? low : nil
    }

    package mutating func removeAll() {
        storage = []
        first = 0
    }
}

extension LogEntry: CursorPositioned {}
extension ReplayReader.Replayed: CursorPositioned {}
