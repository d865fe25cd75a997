import AiravataCore
import Synchronization
import Testing

@testable import AiravataCluster

/// Which lost events a node's clients missed, judged from the positions the node remembers
/// (`RedisEventBus.State`), and how many notices that costs them.
@Suite("Cluster: lost events a node never delivered")
struct LostEventJudgementTests {
    static func at(_ milliseconds: UInt64) -> EventCursor { EventCursor(milliseconds: milliseconds, sequence: 0) }

    static func moved(_ state: inout RedisEventBus.State, to milliseconds: UInt64) {
        state.move(to: at(milliseconds), entry: at(milliseconds), body: nil)
    }

    @Test("a loss past the position, or between two remembered positions, was never delivered")
    func judged() {
        var state = RedisEventBus.State()
        #expect(!state.neverDelivered(Self.at(5)), "a node with no position has no clients' events to miss")
        // Delivered 10, 20, 30, then 40 from a new log: the log lost 35, which a replica that
        // lagged never had; the jump over it need not follow a gap directly.
        for milliseconds: UInt64 in [10, 20, 30, 40] { Self.moved(&state, to: milliseconds) }
        #expect(state.neverDelivered(Self.at(35)), "between 30 and 40")
        #expect(state.neverDelivered(Self.at(15)), "between 10 and 20")
        #expect(!state.neverDelivered(Self.at(30)) && !state.neverDelivered(Self.at(40)), "delivered")
        #expect(state.neverDelivered(Self.at(50)), "past the position")
        #expect(!state.neverDelivered(Self.at(5)), "older than every remembered position: no client waits for it")
        // The memory is bounded: the oldest positions fall out, and its storage is compacted
        // now and then (past twice the capacity), which must keep every answer right.
        let capacity = UInt64(RedisEventBus.rememberedPositions)
        for step in 0..<(2 * capacity + 7) where step != 2 * capacity { Self.moved(&state, to: 100 + 2 * step) }
        #expect(!state.neverDelivered(Self.at(35)))
        #expect(state.delivered.entries.count == RedisEventBus.rememberedPositions)
        #expect(state.neverDelivered(Self.at(100 + 2 * (2 * capacity))), "skipped, and within the memory")
        #expect(state.neverDelivered(Self.at(101 + 2 * (capacity + 10))), "between two remembered positions")
        #expect(!state.neverDelivered(Self.at(100 + 2 * (capacity + 10))), "remembered")
    }

    @Test("one notice covers a rewind however many nodes report it; a loss after the notice is told again")
    func oneNoticePerRewind() {
        let told = Mutex<[EventCursor?]>([])
        var state = RedisEventBus.State()
        state.logReset = [{ position in told.withLock { $0.append(position) } }]
        Self.moved(&state, to: 10)
        let first = state.announceLostEvents(Self.at(12), nowMillis: 1_000)
        let sameRewind = state.announceLostEvents(Self.at(14), nowMillis: 1_001)
        Self.moved(&state, to: 2_000)
        let stillCovered = state.announceLostEvents(Self.at(900), nowMillis: 2_001)
        let later = state.announceLostEvents(Self.at(1_500), nowMillis: 2_002)
        #expect(first)
        #expect(!sameRewind, "lost before the first notice: covered by it")
        #expect(!stillCovered, "older than the first notice's clock: covered")
        #expect(later, "lost after the first notice: news, though nothing was delivered in between")
        #expect(
            told.withLock { $0 } == [Self.at(10), Self.at(2_000)], "each notice carries the position it was given at")
    }

    @Test("another node's loss from before this node started concerns none of its clients")
    func lossesBeforeStart() {
        var state = RedisEventBus.State()
        state.logReset = [{ _ in }]
        Self.moved(&state, to: 10)
        state.startedAt = Self.at(100)
        let before = state.judgeReportedLoss(Self.at(50), nowMillis: 200)
        let after = state.judgeReportedLoss(Self.at(150), nowMillis: 200)
        #expect(!before)
        #expect(after, "past the position and after the start")
        #expect(!state.olderThanMemory(Self.at(10)) && state.olderThanMemory(Self.at(5)))
    }
}
