/// Capped exponential backoff with jitter for reconnects.
struct Backoff: Sendable {
    var initial: Duration = .milliseconds(50)
    var maximum: Duration = .seconds(2)
    private var attempt = 0

    init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(2)) {
        self.initial = initial
        self.maximum = maximum
    }

    mutating func reset() { attempt = 0 }

    mutating func next() -> Duration {
        let base = initial * (1 << min(attempt, 16))
        attempt += 1
        let capped = min(base, maximum)
        return capped * Double.random(in: 0.5...1.0)
    }
}
