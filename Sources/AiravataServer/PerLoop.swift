import Synchronization

/// Values made once per event loop (and whatever else the key holds) and kept for the
/// process's life: the loop-wide helpers (heartbeat tickers, flushers, task executors). Each
/// value holds its loop, so a loop's identity is never reused while its entry is here.
final class PerLoop<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let values = Mutex<[Key: Value]>([:])

    /// The value for `key`, made by `make` the first time.
    func value(for key: Key, make: () -> Value) -> Value {
        values.withLock { values in
            if let existing = values[key] { return existing }
            let made = make()
            values[key] = made
            return made
        }
    }
}
