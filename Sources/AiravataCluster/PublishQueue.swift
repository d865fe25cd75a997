import AiravataCore
import AiravataRedis
import NIOCore
import Synchronization

/// Group commit for the publish script: while one call is in flight, the events of every
/// request that arrives queue up and go together in the next call, in arrival order. Under
/// load one script call carries many requests' events (Redis pays its per-call cost once);
/// alone, a request goes out at once and never waits for another.
///
/// A request's events stay contiguous and in one call, so each request is still accepted
/// whole or not at all; a failed call fails every request it carried.
final class PublishQueue: Sendable {
    /// Most events in one call: bounds the script's run time, during which Redis serves
    /// nobody else.
    static let maxEventsPerCall = 256
    /// Most payload bytes in one call (a single larger request still goes, alone).
    static let maxBytesPerCall = 1 << 20
    /// Most bytes waiting for a call while Redis is slow or away: past it requests are
    /// refused at once (503, retry) instead of piling up in memory.
    static let maxWaitingBytes = 64 << 20

    private struct Waiter {
        var payloads: [[UInt8]]
        var events: Int
        var bytes: Int
        var promise: EventLoopPromise<[String]>
    }

    private struct State {
        var waiting: [Waiter] = []
        var waitingBytes = 0
        var inFlight = false
    }

    private let state = Mutex(State())
    private let loop: any EventLoop
    private let call: @Sendable ([[UInt8]]) -> EventLoopFuture<RedisReply>
    private let argumentsPerEvent: Int
    private let cursors: @Sendable (RedisReply, Int) -> [String]?

    /// - Parameters:
    ///   - loop: where the answers of `async` callers complete (the Redis connection's).
    ///   - argumentsPerEvent: how many of the payloads make one event (the script answers
    ///     one string per event).
    ///   - cursors: reads the script's answer as one string per event (the count given);
    ///     nil when it is not such an answer. By default an array of that many strings.
    ///   - call: sends one publish script call with these payloads, in order.
    init(
        loop: any EventLoop, argumentsPerEvent: Int = 1,
        cursors: @escaping @Sendable (RedisReply, Int) -> [String]? = PublishQueue.strings,
        call: @escaping @Sendable ([[UInt8]]) -> EventLoopFuture<RedisReply>
    ) {
        self.loop = loop
        self.argumentsPerEvent = argumentsPerEvent
        self.cursors = cursors
        self.call = call
    }

    /// An array of exactly `count` strings.
    static func strings(_ reply: RedisReply, count: Int) -> [String]? {
        guard let ids = reply.array?.compactMap(\.string), ids.count == count else { return nil }
        return ids
    }

    /// The script's answers for `payloads` (one per event: the cursors), in order, once the
    /// call that carried them returns.
    func publish(_ payloads: [[UInt8]]) async throws -> [String] {
        try await publish(payloads, on: loop).get()
    }

    /// The same as a future completed on `loop`: no task, so a caller on an event loop
    /// stays there.
    func publish(_ payloads: [[UInt8]], on loop: any EventLoop) -> EventLoopFuture<[String]> {
        guard !payloads.isEmpty else { return loop.makeSucceededFuture([]) }
        let bytes = payloads.reduce(0) { $0 + $1.count }
        let promise = loop.makePromise(of: [String].self)
        let outcome = state.withLock { state -> (batch: [Waiter]?, full: Bool) in
            guard state.waitingBytes == 0 || state.waitingBytes + bytes <= Self.maxWaitingBytes else {
                return (nil, true)
            }
            state.waiting.append(
                Waiter(payloads: payloads, events: payloads.count / argumentsPerEvent, bytes: bytes, promise: promise))
            state.waitingBytes += bytes
            guard !state.inFlight else { return (nil, false) }
            state.inFlight = true
            return (Self.nextBatch(&state), false)
        }
        if outcome.full {
            promise.fail(
                EventBusUnavailableError("more than \(Self.maxWaitingBytes >> 20) MiB of events wait for Redis"))
        }
        if let batch = outcome.batch { send(batch) }
        return promise.futureResult
    }

    /// Takes the oldest requests that fit in one call; at least one.
    private static func nextBatch(_ state: inout State) -> [Waiter] {
        var events = 0
        var bytes = 0
        var taken = 0
        for waiter in state.waiting {
            if taken > 0,
                events + waiter.events > maxEventsPerCall || bytes + waiter.bytes > maxBytesPerCall
            {
                break
            }
            events += waiter.events
            bytes += waiter.bytes
            taken += 1
        }
        let batch = Array(state.waiting.prefix(taken))
        state.waiting.removeFirst(taken)
        state.waitingBytes -= bytes
        return batch
    }

    private func send(_ batch: [Waiter]) {
        call(batch.flatMap(\.payloads)).whenComplete { result in
            let next = self.state.withLock { state -> [Waiter]? in
                guard !state.waiting.isEmpty else {
                    state.inFlight = false
                    return nil
                }
                return Self.nextBatch(&state)
            }
            // The next call goes out before this one's callers resume.
            if let next { self.send(next) }
            Self.answer(batch, with: result, cursors: self.cursors)
        }
    }

    private static func answer(
        _ batch: [Waiter], with result: Result<RedisReply, any Error>,
        cursors read: (RedisReply, Int) -> [String]?
    ) {
        let expected = batch.reduce(0) { $0 + $1.events }
        let cursors: [String]
        switch result {
        case .failure(let error):
            let failure = EventBusUnavailableError("cannot reach Redis to publish: \(error)")
            for waiter in batch { waiter.promise.fail(failure) }
            return
        case .success(.error(let message)):
            let failure = EventBusUnavailableError("Redis refused the publish script: \(message)")
            for waiter in batch { waiter.promise.fail(failure) }
            return
        case .success(let reply):
            guard let ids = read(reply, expected) else {
                let failure = EventBusUnavailableError("unexpected reply to the publish script: \(reply)")
                for waiter in batch { waiter.promise.fail(failure) }
                return
            }
            cursors = ids
        }
        // One task per other loop, not one per request: a promise completed off its loop
        // schedules a task of its own, and half the requests of a call live on another loop.
        var here: [(EventLoopPromise<[String]>, [String])] = []
        var elsewhere: [(loop: any EventLoop, answers: [(EventLoopPromise<[String]>, [String])])] = []
        var position = 0
        for waiter in batch {
            let count = waiter.events
            let answer = (waiter.promise, Array(cursors[position..<(position + count)]))
            position += count
            let loop = waiter.promise.futureResult.eventLoop
            if loop.inEventLoop {
                here.append(answer)
            } else if let index = elsewhere.firstIndex(where: { $0.loop === loop }) {
                elsewhere[index].answers.append(answer)
            } else {
                elsewhere.append((loop, [answer]))
            }
        }
        for (loop, answers) in elsewhere {
            loop.execute { for (promise, ids) in answers { promise.succeed(ids) } }
        }
        for (promise, ids) in here { promise.succeed(ids) }
    }
}
