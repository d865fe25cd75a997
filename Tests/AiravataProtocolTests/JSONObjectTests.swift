import AiravataProtocol
import Testing

@Suite("JSON objects: linear parsing, duplicate names, names as bytes")
struct JSONObjectTests {
    static let nfc = "caf\u{E9}"
    static let nfd = "cafe\u{301}"

    @Test("an object of 100,000 members parses in linear time")
    func linearParsing() throws {
        // Quadratic insertion makes 5·10^9 name comparisons here, about 25 s even optimised;
        // the linear parse takes a fraction of a second in a debug build, which leaves the
        // bound ample room (and keeps the test light beside the suites running in parallel).
        let count = 100_000
        var text = "{"
        for index in 0..<count {
            if index > 0 { text += "," }
            text += "\"k\(index)\":\(index)"
        }
        text += "}"
        let clock = ContinuousClock()
        let start = clock.now
        let value = try JSONValue(parsing: text)
        let elapsed = clock.now - start
        let object = try #require(value.objectValue)
        #expect(object.count == count)
        #expect(object["k99999"] == .number("99999"))
        #expect(elapsed < .seconds(10), "expected a linear parse of \(count) members, it took \(elapsed)")
    }

    @Test(
        "a duplicate member name refuses the document, in small and large objects and nested",
        arguments: [
            #"{"a":1,"a":2}"#,
            #"{"x":{"type":"a","type":"b"}}"#,
            "{" + (0..<40).map { "\"k\($0)\":0" }.joined(separator: ",") + ",\"k7\":1}",
            #"{"a\u00e9":1,"aé":2}"#,
        ]
    )
    func duplicates(text: String) {
        do {
            _ = try JSONValue(parsing: text)
            Issue.record("expected a duplicate-name refusal, the document was accepted")
        } catch {
            #expect(error.reason == "duplicate member name", "expected a duplicate-name refusal, got \(error)")
        }
    }

    @Test("names that differ only in Unicode normal form are two members")
    func normalFormsAreDistinct() throws {
        let value = try JSONValue(parsing: "{\"\(Self.nfc)\":1,\"\(Self.nfd)\":2}")
        let object = try #require(value.objectValue)
        #expect(object.count == 2)
        #expect(object[Self.nfc] == .number("1"))
        #expect(object[Self.nfd] == .number("2"))
        #expect(JSONValue.string(Self.nfc) != .string(Self.nfd))
        #expect(value == (try JSONValue(parsing: value.jsonString)))
    }

    @Test("building in code: setting a name again replaces in place, nil removes")
    func builderSetter() {
        var object: JSONObject = ["a": .integer(1), "b": .integer(2), "a": .integer(3)]
        #expect(object.keys == ["a", "b"])
        #expect(object["a"] == .integer(3))
        object["b"] = .string("x")
        object[Self.nfc] = .integer(4)
        object[Self.nfd] = .integer(5)
        #expect(object.keys == ["a", "b", Self.nfc, Self.nfd])
        object["a"] = nil
        #expect(object.keys == ["b", Self.nfc, Self.nfd])
        #expect(object["b"] == .string("x"))
        #expect(JSONValue.object(object).jsonString == "{\"b\":\"x\",\"\(Self.nfc)\":4,\"\(Self.nfd)\":5}")
    }
}
