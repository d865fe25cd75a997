import AiravataCore
import Testing

@Suite("Deduplication memory of the embedded bus: window and bound")
struct RecentProducerIDsTests {
    @Test("an id is a duplicate within the window, and new again after it")
    func window() {
        var ids = RecentProducerIDs(policy: Deduplication(windowMillis: 1_000, capacity: 10))
        #expect(ids.cursor(of: "a", nowMillis: 0) == nil)
        ids.remember("a", cursor: "5-1", nowMillis: 0)
        #expect(ids.cursor(of: "a", nowMillis: 999) == "5-1", "inside the window the first cursor is remembered")
        #expect(ids.cursor(of: "a", nowMillis: 1_000) == nil, "at the window's end the id is forgotten")
        ids.remember("a", cursor: "5-9", nowMillis: 1_000)
        #expect(ids.cursor(of: "a", nowMillis: 1_500) == "5-9", "accepted again, it is remembered anew")
        #expect(ids.count == 1)
    }

    @Test("past the capacity the oldest ids are forgotten first")
    func capacity() {
        var ids = RecentProducerIDs(policy: Deduplication(windowMillis: 60_000, capacity: 3))
        for index in 0..<5 { ids.remember("id-\(index)", cursor: "1-\(index)", nowMillis: Int64(index)) }
        #expect(ids.count == 3, "expected the bound of 3 ids, got \(ids.count)")
        #expect(ids.cursor(of: "id-0", nowMillis: 5) == nil)
        #expect(ids.cursor(of: "id-1", nowMillis: 5) == nil)
        #expect(ids.cursor(of: "id-4", nowMillis: 5) == "1-4")
    }

    @Test("many ids through a small window stay bounded")
    func churn() {
        var ids = RecentProducerIDs(policy: Deduplication(windowMillis: 10, capacity: 1_000))
        for index in 0..<50_000 { ids.remember("id-\(index)", cursor: "1-\(index)", nowMillis: Int64(index)) }
        #expect(ids.count <= 10, "expected at most the window's 10 ids, got \(ids.count)")
        #expect(ids.cursor(of: "id-49999", nowMillis: 49_999) == "1-49999")
    }
}
