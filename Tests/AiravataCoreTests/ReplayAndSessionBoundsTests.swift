import AiravataCore
import AiravataProtocol
import Synchronization
import Testing

@Suite("Replay reads and session stores stay within their bounds")
struct ReplayAndSessionBoundsTests {
    static func event(_ index: Int, experiment: String) -> GatewayEvent {
        GatewayEvent(
            type: .experimentProgress,
            id: "ev-\(index)",
            timestamp: "2024-01-01T00:00:00Z",
            data: .object(["experimentId": .string(experiment), "completedTasks": .integer(index)]),
            routing: EventRouting(category: .experiment, experimentID: experiment),
            acceptedAtMicros: 1
        )
    }

    /// A log of `count` events for e-1 behind the epoch mark, and a reader whose memory
    /// cannot answer, so every resume reads the log.
    static func logAndReader(count: Int) async throws -> (ReplayReader, EventCursor) {
        let bus = EmbeddedEventBus(replayLength: count + 10)
        let start = try await bus.logTip()
        for batch in stride(from: 0, to: count, by: 500) {
            _ = try await bus.publish((batch..<min(batch + 500, count)).map { event($0, experiment: "e-1") })
        }
        return (ReplayReader(bus: bus, recentCapacity: 1), start)
    }

    @Test("a resume over the cap stops reading the log after one chunk")
    func stopsAtTheCap() async throws {
        let (reader, start) = try await Self.logAndReader(count: 5 * ReplayReader.logChunk)
        let outcome = try await reader.replay(.init(after: start, limit: 10) { _ in true })
        guard case .tooLarge = outcome else {
            Issue.record("expected tooLarge, got \(outcome)")
            return
        }
        #expect(
            reader.entriesRead <= ReplayReader.logChunk,
            "read \(reader.entriesRead) log entries for a replay capped at 10; expected one chunk at most")
    }

    @Test("a resume owed few events reads on to the end and gets exactly those")
    func readsOnForFew() async throws {
        let count = 3 * ReplayReader.logChunk + 7
        let (reader, start) = try await Self.logAndReader(count: count)
        let outcome = try await reader.replay(
            .init(after: start, limit: 10) { routing in routing.experimentID == "e-2" })
        guard case .recovered(let owed, _) = outcome else {
            Issue.record("expected recovered, got \(outcome)")
            return
        }
        #expect(owed.isEmpty)
        #expect(reader.entriesRead == count, "expected the whole log read in chunks, read \(reader.entriesRead)")

        let all = try await reader.replay(.init(after: start, limit: count) { _ in true })
        guard case .recovered(let every, _) = all else {
            Issue.record("expected recovered, got \(all)")
            return
        }
        #expect(every.count == count)
        #expect(zip(every, every.dropFirst()).allSatisfy { $0.cursor < $1.cursor }, "replay out of cursor order")
    }

    @Test("the in-memory store keeps at most the cap of sessions per user, evicting the oldest")
    func sessionsPerUser() async throws {
        let store = InMemorySessionStore(ttlSeconds: 60)
        for index in 0..<8 {
            try await store.save(
                "session-\(index)", SessionRecord(userID: "dave", subscriptions: []), sessionsPerUser: 3)
        }
        try await store.save("other-0", SessionRecord(userID: "erin", subscriptions: []), sessionsPerUser: 3)
        #expect(store.count(of: "dave") == 3)
        #expect(try await store.load("session-0") == nil, "the oldest session should have been evicted")
        #expect(try await store.load("session-7") != nil, "the newest session must stay")
        #expect(try await store.load("other-0") != nil, "another user's session must not be evicted")
    }

    @Test("the in-memory store evicts by last save or renewal, and expired sessions count for nothing")
    func sessionsPerUserByExpiry() async throws {
        let now = Mutex<UInt64>(1_000_000_000)
        let store = InMemorySessionStore(ttlSeconds: 10, clock: { now.withLock { $0 } })
        func advance(seconds: UInt64) { now.withLock { $0 += seconds * 1_000_000_000 } }
        let record = SessionRecord(userID: "dave", subscriptions: [])
        for index in 0..<3 {
            try await store.save("s-\(index)", record, sessionsPerUser: 3)
            advance(seconds: 1)
        }
        try await store.renew([SessionHandle(id: "s-0", userID: "dave")])
        try await store.save("s-3", record, sessionsPerUser: 3)
        #expect(try await store.load("s-1") == nil, "s-1 was saved longest ago and never renewed")
        #expect(try await store.load("s-0") != nil, "s-0 was renewed after s-1 and s-2 were saved")
        #expect(store.count(of: "dave") == 3)

        // All of them expire; new sessions are not limited by the expired ones.
        advance(seconds: 20)
        #expect(store.count(of: "dave") == 0)
        for index in 10..<13 { try await store.save("s-\(index)", record, sessionsPerUser: 3) }
        #expect(store.count(of: "dave") == 3)
        for index in 10..<13 { #expect(try await store.load("s-\(index)") != nil) }
    }

    @Test("one user's thousands of sessions are all kept under a limit that allows them")
    func manySessionsOneUser() async throws {
        let store = InMemorySessionStore(ttlSeconds: 60)
        let record = SessionRecord(userID: "service", subscriptions: [])
        for index in 0..<10_000 { try await store.save("s-\(index)", record, sessionsPerUser: 20_000) }
        #expect(store.count(of: "service") == 10_000)
        #expect(try await store.load("s-0") != nil)
        try await store.save("s-last", record, sessionsPerUser: 100)
        #expect(store.count(of: "service") == 100, "a lower limit applies at the next save")
        #expect(try await store.load("s-last") != nil)
    }

    @Test("a session record's size is bounded")
    func recordSize() {
        let small = SessionRecord(
            userID: "alice",
            subscriptions: (0..<100).map { SubscriptionKey(.experiment, String(repeating: "x", count: 128) + "\($0)") })
        #expect(small.fitsInStore, "100 subscriptions with 128-byte ids must fit")
        let large = SessionRecord(
            userID: "alice", subscriptions: [SubscriptionKey(.experiment, String(repeating: "x", count: 20_000))])
        #expect(!large.fitsInStore)
    }

    @Test("the size bound that spares a connect the encoding is never below the encoded size")
    func recordSizeBound() {
        // The bytes that encode longest (controls, quote, backslash, multi-byte characters),
        // the longest resource names, and sizes on both sides of the store's limit.
        let worst = ["\u{01}", "\"", "\\", "é", "😀", "x", "\n"]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            let user = String(
                (0..<Int.random(in: 0..<40, using: &generator)).map { _ in
                    worst.randomElement(using: &generator)!.first!
                })
            let keys = (0..<Int.random(in: 0..<12, using: &generator)).map { _ in
                let length =
                    round % 3 == 0
                    ? Int.random(in: 0..<600, using: &generator) : Int.random(in: 0..<40, using: &generator)
                let id = String((0..<length).map { _ in worst.randomElement(using: &generator)!.first! })
                return SubscriptionKey(
                    [ResourceType.experiment, .task, .project, .user, .worker].randomElement(using: &generator)!, id)
            }
            let record = SessionRecord(userID: user, subscriptions: keys)
            let encoded = record.json.jsonString.utf8.count
            #expect(record.encodedSizeBound >= encoded, "bound \(record.encodedSizeBound) below \(encoded) bytes")
            #expect(record.fitsInStore == (encoded <= SessionRecord.maxEncodedBytes))
        }
        // Only the longest escape, around the limit: 2,700 control bytes encode to 16,200.
        for length in [2_600, 2_700, 2_730] {
            let controls = String(repeating: "\u{01}", count: length)
            for record in [
                SessionRecord(userID: controls, subscriptions: []),
                SessionRecord(userID: "", subscriptions: [SubscriptionKey(.experiment, controls)]),
            ] {
                let encoded = record.json.jsonString.utf8.count
                #expect(record.encodedSizeBound >= encoded, "bound \(record.encodedSizeBound) below \(encoded) bytes")
                #expect(record.fitsInStore == (encoded <= SessionRecord.maxEncodedBytes))
            }
        }
        let system = SessionRecord(userID: "", subscriptions: [.system])
        #expect(system.encodedSizeBound >= system.json.jsonString.utf8.count)
    }
}
