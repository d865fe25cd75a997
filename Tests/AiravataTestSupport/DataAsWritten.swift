import AiravataProtocol
import Testing

/// A producer's batch whose first event's `data` is compact JSON with escapes our writer
/// would not choose, and whose second's has whitespace: subscribers get the first as the
/// producer wrote it, the second written again, compact. Both to project `p-1`.
public enum DataAsWritten {
    public static let written = #"{"task":{"id":"t-1","experimentId":"e-1","note":"caf\u00e9 \/ \"q\""}}"#
    public static let spaced = #"{ "task" : { "id" : "t-2", "experimentId" : "e-1", "note" : "caf\u00e9" } }"#

    public static var body: String {
        let routing = #""routing":{"projectId":"p-1","ownerId":"u-1"}"#
        return #"[{"type":"task_updated",\#(routing),"data":\#(written)},"#
            + #"{"type":"task_updated",\#(routing),"data":\#(spaced)}]"#
    }

    /// Checks the two messages' texts as a subscriber received them.
    public static func expect(_ first: String, _ second: String) throws {
        #expect(first.contains(#""data":\#(written)"#), "passed on as written: \(first)")
        let compact = try JSONValue(parsing: spaced).jsonString
        #expect(!second.contains(spaced), "passed on with its whitespace: \(second)")
        #expect(second.contains(#""data":\#(compact)"#), "written again, compact: \(second)")
        for (text, data) in [(first, written), (second, spaced)] {
            let message = try JSONValue(parsing: text)
            #expect(message["data"] == (try JSONValue(parsing: data)))
            #expect(message["cursor"]?.stringValue?.isEmpty == false)
        }
    }
}
