import AiravataCore
import AiravataProtocol
import NIOCore
import Synchronization
import Testing

/// Where a new client's history starts: read from the log once, then known on the node.
@Suite("A new client's start cursor")
struct StartCursorTests {
    /// A reader over an empty embedded log, and a tip read that counts its calls.
    final class CountingTip: Sendable {
        let bus = EmbeddedEventBus(replayLength: 10)
        let reads = Atomic(0)
        /// Run inside the read, before it returns (to reset the log under it, say).
        let during: Mutex<(@Sendable () -> Void)?> = Mutex(nil)

        func read() async throws -> EventCursor {
            reads.add(1, ordering: .relaxed)
            during.withLock { $0 }?()
            return try await bus.logTip()
        }
    }

    static func routed(_ cursor: EventCursor) -> ReplayReader.Replayed {
        let head = ByteBuffer(string: #"{"type":"system_status","data":{}"#)
        return .init(
            cursor: cursor,
            event: RoutedEvent(routing: EventRouting(category: .system), acceptedAtMicros: 0, envelopeHead: head))
    }

    @Test("a connection storm on a quiet node reads the log's tip once")
    func oneReadForMany() async throws {
        let tip = CountingTip()
        let reader = ReplayReader(bus: tip.bus)
        let first = try await reader.startCursor(readingTip: tip.read)
        for _ in 0..<100 {
            #expect(try await reader.startCursor(readingTip: tip.read) == first)
        }
        #expect(tip.reads.load(ordering: .relaxed) == 1)
    }

    @Test("an event routed after the read is where the next client starts")
    func routedEventWins() async throws {
        let tip = CountingTip()
        let reader = ReplayReader(bus: tip.bus)
        let first = try await reader.startCursor(readingTip: tip.read)
        let later = EventCursor(milliseconds: first.milliseconds, sequence: first.sequence + 5)
        reader.remember(Self.routed(later))
        #expect(try await reader.startCursor(readingTip: tip.read) == later)
        // A node that has routed an event needs no read at all.
        let busy = ReplayReader(bus: tip.bus)
        let routed = EventCursor(milliseconds: 7, sequence: 1)
        busy.remember(Self.routed(routed))
        #expect(try await busy.startCursor(readingTip: tip.read) == routed)
        #expect(tip.reads.load(ordering: .relaxed) == 1)
    }

    @Test("a lost log is read again, and a read that a reset overtook is not kept")
    func resetForgetsTheTip() async throws {
        let tip = CountingTip()
        let reader = ReplayReader(bus: tip.bus)
        _ = try await reader.startCursor(readingTip: tip.read)
        reader.forgetRecent()
        _ = try await reader.startCursor(readingTip: tip.read)
        #expect(tip.reads.load(ordering: .relaxed) == 2)

        reader.forgetRecent()
        tip.during.withLock { $0 = { reader.forgetRecent() } }
        _ = try await reader.startCursor(readingTip: tip.read)
        tip.during.withLock { $0 = nil }
        _ = try await reader.startCursor(readingTip: tip.read)
        #expect(tip.reads.load(ordering: .relaxed) == 4, "the overtaken read was kept")
    }

    @Test("a failed read is not remembered")
    func failedReadIsNotKept() async throws {
        struct Down: Error {}
        let reader = ReplayReader(bus: EmbeddedEventBus(replayLength: 10))
        await #expect(throws: Down.self) { try await reader.startCursor { throw Down() } }
        let tip = CountingTip()
        _ = try await reader.startCursor(readingTip: tip.read)
        #expect(tip.reads.load(ordering: .relaxed) == 1)
    }
}
