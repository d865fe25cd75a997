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

    /// What a caller is answered with: its events' cursors, or why they were not published.
    typealias Completion = @Sendable (Result<[String], any Error>) -> Void

    private struct Waiter {
        var payloads: [[UInt8]]
        var events: Int
        var bytes: Int
        /// Where `complete` runs.
        var loop: any EventLoop
        var complete: Completion
    }

    private struct State {
        /// A ring: each call takes from the front, which in an array shifted everything
        /// behind it (quadratic in the backlog while Redis was slow or away).
        var waiting = CircularBuffer<Waiter>()
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
        let promise = loop.makePromise(of: [String].self)
        publish(payloads, on: loop) { promise.completeWith($0) }
        return promise.futureResult
    }

    /// The same with a callback that runs on `loop` (at once when the answer needs no wait
    /// and the caller is on `loop`): ingestion's path, which a promise per request would
    /// cost an allocation and a generic-metadata lookup or two.
    func publish(_ payloads: [[UInt8]], on loop: any EventLoop, then complete: @escaping Completion) {
        guard !payloads.isEmpty else {
            Self.run(complete, .success([]), on: loop)
            return
        }
        let bytes = payloads.reduce(0) { $0 + $1.count }
        let outcome = state.withLock { state -> (batch: [Waiter]?, full: Bool) in
            guard state.waitingBytes == 0 || state.waitingBytes + bytes <= Self.maxWaitingBytes else {
                return (nil, true)
            }
            state.waiting.append(
                Waiter(
                    payloads: payloads, events: payloads.count / argumentsPerEvent, bytes: bytes, loop: loop,
                    complete: complete))
            state.waitingBytes += bytes
            guard !state.inFlight else { return (nil, false) }
            state.inFlight = true
            return (Self.nextBatch(&state), false)
        }
        if outcome.full {
            let error = EventBusUnavailableError("more than \(Self.maxWaitingBytes >> 20) MiB of events wait for Redis")
            Self.run(complete, .failure(error), on: loop)
        }
        if let batch = outcome.batch { send(batch) }
    }

    private static func run(
        _ complete: @escaping Completion, _ result: Result<[String], any Error>, on loop: any EventLoop
    ) {
        if loop.inEventLoop {
            complete(result)
        } else {
            loop.execute { complete(result) }
        }
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
        var failure: (any Error)?
        var cursors: [String] = []
        switch result {
        case .failure(let error):
            failure = EventBusUnavailableError("cannot reach Redis to publish: \(error)")
        case .success(.error(let message)):
            failure = EventBusUnavailableError("Redis refused the publish script: \(message)")
        case .success(let reply):
            if let ids = read(reply, expected) {
                cursors = ids
            } else {
                failure = EventBusUnavailableError("unexpected reply to the publish script: \(reply)")
            }
        }
        // One task per other loop, not one per request: half the requests of a call may
        // live on another loop.
        typealias Answer = (complete: Completion, result: Result<[String], any Error>)
        var here: [Answer] = []
        var elsewhere: [(loop: any EventLoop, answers: [Answer])] = []
        var position = 0
        for waiter in batch {
            let count = waiter.events
            let answer: Answer = (
                waiter.complete,
                failure.map { .failure($0) } ?? .success(Array(cursors[position..<(position + count)]))
            )
            position += count
            let loop = waiter.loop
            if loop.inEventLoop {
                here.append(answer)
            } else if let index = elsewhere.firstIndex(where: { $0.loop === loop }) {
                elsewhere[index].answers.append(answer)
            } else {
                elsewhere.append((loop, [answer]))
            }
        }
        for (loop, answers) in elsewhere {
            loop.execute { for (complete, result) in answers { complete(result) } }
        }
        for (complete, result) in here { complete(result) }
    }
}
