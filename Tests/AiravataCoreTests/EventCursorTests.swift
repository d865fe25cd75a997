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

@Suite("Event cursors read from bytes")
struct EventCursorBytesTests {
    @Test("bytes and text give the same answer, for good cursors and bad")
    func sameAsText() {
        var inputs = [
            "0-0", "1-0", "1764950400000-17", "18446744073709551615-18446744073709551615", "18446744073709551616-0",
            "01-0", "1-00", "-1", "1-", "1--1", "+1-0", "1-+0", "", "-", "1", "1-0-0", " 1-0", "1-0 ", "١-٠",
            "123456789012345678901-0", "99999999999999999999-0",
        ]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("0123456789-+ a".utf8)
        for _ in 0..<5_000 {
            let length = Int.random(in: 0...24, using: &generator)
            inputs.append(
                String(decoding: (0..<length).map { _ in alphabet.randomElement(using: &generator)! }, as: UTF8.self))
        }
        for input in inputs {
            #expect(EventCursor(bytes: Array(input.utf8)) == EventCursor(input), "\(input.debugDescription)")
        }
    }
}
