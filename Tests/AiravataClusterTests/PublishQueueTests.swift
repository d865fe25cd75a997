import AiravataCore
import AiravataRedis
import AiravataTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import AiravataCluster

/// Group commit without Redis: the queue's own rules, with calls answered by hand.
@Suite("Publish queue")
struct PublishQueueTests {
    /// Holds each call's payloads and the promise that answers it.
    final class Calls: Sendable {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        private let calls = Mutex<[(payloads: [[UInt8]], promise: EventLoopPromise<RedisReply>)]>([])

        func call(_ payloads: [[UInt8]]) -> EventLoopFuture<RedisReply> {
            let promise = loop.makePromise(of: RedisReply.self)
            calls.withLock { $0.append((payloads, promise)) }
            return promise.futureResult
        }

        var count: Int { calls.withLock { $0.count } }

        /// Answers call `index` with a reply that is not one cursor per payload.
        func answerShort(_ index: Int) {
            calls.withLock { $0[index] }.promise.succeed(.array([.bulk(ByteBuffer(string: "1-0"))]))
        }

        /// Answers call `index` with one cursor per payload, numbered from `first`.
        func answer(_ index: Int, first: Int) -> [[UInt8]] {
            let (payloads, promise) = calls.withLock { $0[index] }
            promise.succeed(.array(payloads.indices.map { .bulk(ByteBuffer(string: "1-\(first + $0)")) }))
            return payloads
        }
    }

    @Test(
        "while a call is in flight, later requests wait and go together, in order; past the byte bound they are refused"
    )
    func groupsAndBounds() async throws {
        let calls = Calls()
        let queue = PublishQueue(loop: calls.loop) { calls.call($0) }
        let first = queue.publish([[1]], on: calls.loop)
        #expect(calls.count == 1)
        let second = queue.publish([[2], [3]], on: calls.loop)
        let third = queue.publish([[4]], on: calls.loop)
        #expect(calls.count == 1, "a second call went out while the first was in flight")
        // Past the bound on waiting bytes: refused at once, nothing queued.
        let huge = queue.publish([[UInt8](repeating: 0, count: PublishQueue.maxWaitingBytes)], on: calls.loop)
        await #expect(throws: EventBusUnavailableError.self) { try await huge.get() }

        #expect(calls.answer(0, first: 0) == [[1]])
        #expect(try await first.get() == ["1-0"])
        // The next call carries both waiting requests, in arrival order.
        #expect(await eventually { calls.count == 2 })
        #expect(calls.answer(1, first: 1) == [[2], [3], [4]])
        #expect(try await second.get() == ["1-1", "1-2"])
        #expect(try await third.get() == ["1-3"])

        // A reply that does not fit fails every request of its call; the queue goes on.
        let fourth = queue.publish([[5], [6]], on: calls.loop)
        #expect(await eventually { calls.count == 3 })
        let fifth = queue.publish([[7]], on: calls.loop)
        calls.answerShort(2)
        await #expect(throws: EventBusUnavailableError.self) { try await fourth.get() }
        #expect(await eventually { calls.count == 4 })
        #expect(calls.answer(3, first: 20) == [[7]])
        #expect(try await fifth.get() == ["1-20"])
    }
}
