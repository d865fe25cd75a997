import AiravataProtocol
import Testing

@Suite("JSON parsing and writing")
struct JSONValueTests {
    @Test("round trip keeps member order and number literals")
    func roundTrip() throws {
        let text = #"{"b":1,"a":[true,false,null],"n":45.0,"e":1.5e-3,"s":"x\"y\\z\n\u00e9\ud83d\ude00","o":{}}"#
        let value = try JSONValue(parsing: text)
        #expect(value["n"] == .number("45.0"))
        #expect(value.objectValue?.keys == ["b", "a", "n", "e", "s", "o"])
        #expect(value["s"]?.stringValue == "x\"y\\z\né😀")
        let again = try JSONValue(parsing: value.jsonString)
        #expect(again == value)
        #expect(value.jsonString.hasPrefix(#"{"b":1,"a":[true,false,null],"n":45.0"#))
    }

    @Test(
        "malformed documents are refused",
        arguments: [
            "", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "tru", "\"abc", "{\"a\" 1}", "[1] x", "\"\\q\"",
            "\"\\ud800\"", "nul", "{'a':1}", "\"a\u{01}b\"",
        ]
    )
    func malformed(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test("nesting beyond the limit is refused instead of exhausting the stack")
    func depthLimit() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
        let fine = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        _ = try JSONValue(parsing: fine)
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: [0x22, 0xFF, 0x22]) }
    }

    @Test("control characters are escaped on output")
    func escaping() {
        #expect(JSONValue.string("a\u{01}\t").jsonString == #""a\u0001\t""#)
        #expect(JSONValue.double(.nan) == .null)
        #expect(JSONValue.integer(42).jsonString == "42")
    }

    /// `parsingEvents` over a text; each span as the text it covers.
    private func eventData(_ text: String) throws -> (JSONValue, [String?]) {
        let bytes = Array(text.utf8)
        let (document, spans) = try bytes.withUnsafeBufferPointer { try JSONValue.parsingEvents($0) }
        return (document, spans.map { span in span.map { String(decoding: bytes[$0], as: UTF8.self) } })
    }

    @Test("a producer's body: each event's data found as written, when compact")
    func eventDataSpans() throws {
        let one = #" { "type" : "x" , "data" : {"a":"café \/","n":[1,2.50]} , "id":"i" } "#
        let (document, spans) = try eventData(one)
        #expect(spans == [#"{"a":"café \/","n":[1,2.50]}"#])
        #expect(try JSONValue(parsing: spans[0]!) == document["data"])

        // One span per element; nil for an element that is no object, has no data, or
        // whose data holds whitespace (it is written again, compact).
        let batch = #"[{"data":{"k":1}},7,{"type":"x"},{"data":{"k": 1}},{"data":"s p a c e"},{"data":[]}]"#
        #expect(try eventData(batch).1 == [#"{"k":1}"#, nil, nil, nil, #""s p a c e""#, "[]"])

        // Only the event's own member: `data` deeper down or under another member is not it.
        let nested = #"{"routing":{"data":1},"data":{"data":{"data":2}}}"#
        #expect(try eventData(nested).1 == [#"{"data":{"data":2}}"#])
        #expect(try eventData(#"[[{"data":1}]]"#).1 == [nil])
        #expect(try eventData(#""text""#).1 == [])
        #expect(throws: JSONParseError.self) { try eventData(#"{"data":{"a":1},"data":2}"#) }
    }
}
