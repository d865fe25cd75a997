import AiravataProtocol
import AiravataTestSupport
import Testing

/// Retry-safe ingestion on a single node (embedded bus): a producer id is accepted once.
@Suite("Ingestion API: producer ids are accepted once")
struct IdempotentIngestionTests {
    static func event(id: String?, note: String) -> JSONValue {
        var object: JSONObject = ["type": .string("system_status"), "data": .object(["notice": .string(note)])]
        if let id { object["id"] = .string(id) }
        return .object(object)
    }

    @Test("the same id posted twice is delivered once; the answer marks the duplicate")
    func retriedPost() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "viewer")
            defer { socket.close() }
            let first = try await node.publish(Self.event(id: "sched-42", note: "first"))
            let retry = try await node.publish(Self.event(id: "sched-42", note: "first"))
            #expect(first["accepted"]?.doubleValue == 1)
            #expect(first["duplicates"]?.arrayValue == [], "first post: \(first.jsonString)")
            #expect(retry["accepted"]?.doubleValue == 0, "retry: \(retry.jsonString)")
            #expect(retry["duplicates"]?.arrayValue == [.integer(0)], "retry: \(retry.jsonString)")
            #expect(
                retry["cursors"] == first["cursors"], "a duplicate answers with the first cursor: \(retry.jsonString)")
            try await node.publish(Self.event(id: nil, note: "end"))

            let delivered = try await socket.nextMessage(ofType: "system_status")
            #expect(delivered["id"]?.stringValue == "sched-42", "got \(delivered.jsonString)")
            let next = try await socket.nextMessage(ofType: "system_status")
            #expect(next["data"]?["notice"]?.stringValue == "end", "only the sentinel may follow: \(next.jsonString)")
        }
    }

    @Test("a batch: new, repeated within the batch, repeated from before, and without id")
    func mixedBatch() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "viewer")
            defer { socket.close() }
            try await node.publish(Self.event(id: "a", note: "a"))
            let answer = try await node.publish(
                .array([
                    Self.event(id: "b", note: "b"), Self.event(id: "b", note: "b"), Self.event(id: "a", note: "a"),
                    Self.event(id: nil, note: "plain"), Self.event(id: nil, note: "plain"),
                ]))
            #expect(answer["accepted"]?.doubleValue == 3, "answer: \(answer.jsonString)")
            #expect(answer["duplicates"]?.arrayValue == [.integer(1), .integer(2)], "answer: \(answer.jsonString)")
            try await node.publish(Self.event(id: nil, note: "end"))

            var notes: [String] = []
            while notes.last != "end" {
                let message = try await socket.nextMessage(ofType: "system_status")
                notes.append(message["data"]?["notice"]?.stringValue ?? "?")
            }
            #expect(notes == ["a", "b", "plain", "plain", "end"], "events without an id are never deduplicated")
        }
    }
}
