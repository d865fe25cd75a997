import AiravataCore
import Synchronization
import Testing

@testable import AiravataCluster

/// Which lost events a node's clients missed, judged from the node's own position and the
/// jumps it made after gaps (`RedisEventBus.State`), and how many notices that costs them.
@Suite("Cluster: lost events a node never delivered")
struct LostEventJudgementTests {
    static func at(_ milliseconds: UInt64) -> EventCursor { EventCursor(milliseconds: milliseconds, sequence: 0) }

    static func moved(_ state: inout RedisEventBus.State, to milliseconds: UInt64) {
        state.move(to: at(milliseconds), entry: at(milliseconds), body: nil)
    }

    @Test("a loss past the position, or inside a jump after a gap, was never delivered; one delivered live was")
    func judged() {
        var state = RedisEventBus.State()
        #expect(!state.neverDelivered(Self.at(5)), "a node with no position has no clients' events to miss")
        Self.moved(&state, to: 10)
        // A gap fill starts at 10 and the next thing the log (or pub/sub) gives is 20.
        state.fillFrom = state.lastCursor
        Self.moved(&state, to: 20)
        Self.moved(&state, to: 30)
        #expect(state.neverDelivered(Self.at(15)), "inside the jump from 10 to 20")
        #expect(!state.neverDelivered(Self.at(10)) && !state.neverDelivered(Self.at(20)), "its ends were delivered")
        #expect(!state.neverDelivered(Self.at(25)), "20 to 30 is one step of live delivery, no gap")
        #expect(state.neverDelivered(Self.at(40)), "past the position")
        // Old jumps are forgotten, a bounded number kept.
        for step in 0..<RedisEventBus.maxRememberedJumps {
            state.fillFrom = state.lastCursor
            Self.moved(&state, to: 100 + 10 * UInt64(step))
        }
        #expect(!state.neverDelivered(Self.at(15)))
        #expect(state.jumps.count == RedisEventBus.maxRememberedJumps)
    }

    @Test("one notice covers a rewind however many nodes report it; a later loss is told again")
    func oneNoticePerRewind() {
        let told = Mutex<[EventCursor?]>([])
        var state = RedisEventBus.State()
        state.logReset = [{ position in told.withLock { $0.append(position) } }]
        Self.moved(&state, to: 10)
        let first = state.announceLostEvents(Self.at(10))
        let again = state.announceLostEvents(Self.at(12))
        Self.moved(&state, to: 20)
        let covered = state.announceLostEvents(Self.at(15))
        let later = state.announceLostEvents(Self.at(25))
        #expect(first)
        #expect(!again, "no event delivered since the notice: it covers this too")
        #expect(!covered, "below the first event after the notice: covered")
        #expect(later, "a loss after that is news")
        #expect(told.withLock { $0 } == [Self.at(10), Self.at(20)], "each notice carries the position it was given at")
    }
}
