import AiravataCore
import Testing

@Suite("Cursors: one spelling each")
struct EventCursorTests {
    @Test("well-formed cursors read back exactly as written")
    func wellFormed() throws {
        for text in ["0-0", "1700000000000-0", "7-1", "18446744073709551615-18446744073709551615"] {
            let cursor = try #require(EventCursor(text), "\(text) should parse")
            #expect(cursor.description == text)
        }
    }

    @Test("signs, spaces, leading zeros, overflow and stray dashes are refused")
    func refused() {
        for text in [
            "+7-1", "7-+1", "5--0", "-5-0", " 7-1", "7-1 ", "07-1", "7-01", "7", "7-", "-1", "", "a-1",
            "18446744073709551616-0", "7-1-2",
        ] {
            #expect(EventCursor(text) == nil, "\(text) should be refused")
        }
    }
}
