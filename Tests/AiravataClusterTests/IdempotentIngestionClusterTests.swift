import AiravataProtocol
import AiravataTestSupport
import Testing

/// Retry-safe ingestion across nodes: the id check is in the publish script, so two nodes
/// cannot both accept one producer id.
@Suite("Cluster: producer ids are accepted once across nodes", .serialized)
struct IdempotentIngestionClusterTests {
    static func event(id: String?, note: String) -> JSONValue {
        var object: JSONObject = ["type": .string("system_status"), "data": .object(["notice": .string(note)])]
        if let id { object["id"] = .string(id) }
        return .object(object)
    }

    /// Reads system_status notices until the sentinel `end`.
    static func notices(_ socket: RawWebSocket) async throws -> [String] {
        var notes: [String] = []
        while notes.last != "end" {
            let message = try await socket.nextMessage(ofType: "system_status")
            guard message["data"]?["action"] == nil else { continue }
            notes.append(message["data"]?["notice"]?.stringValue ?? "?")
        }
        return notes
    }

    @Test("the same id posted to two nodes is delivered once", arguments: ["v3", "v2", "v1"])
    func retriedOnAnotherNode(format: String) async throws {
        try await ClusterHarness.with(nodes: 2, arguments: ["--bus-format", format]) { cluster in
            let sockets = [
                try await cluster.connect(0, "/ws", user: "viewer-1"),
                try await cluster.connect(1, "/ws", user: "viewer-2"),
            ]
            defer { sockets.forEach { $0.close() } }
            let first = try await cluster.publish(0, Self.event(id: "sched-7", note: "once"))
            let retry = try await cluster.publish(1, Self.event(id: "sched-7", note: "once"))
            #expect(first["duplicates"]?.arrayValue == [], "first post: \(first.jsonString)")
            #expect(retry["duplicates"]?.arrayValue == [.integer(0)], "retry on node 2: \(retry.jsonString)")
            #expect(retry["accepted"]?.doubleValue == 0, "retry on node 2: \(retry.jsonString)")
            #expect(retry["cursors"] == first["cursors"], "the duplicate's cursor is the first one's")
            try await cluster.publish(1, Self.event(id: nil, note: "end"))
            for socket in sockets {
                let notes = try await Self.notices(socket)
                #expect(notes == ["once", "end"], "expected the event once, then the sentinel; got \(notes)")
            }
        }
    }

    @Test("posted to both nodes at once, exactly one is accepted")
    func concurrentPosts() async throws {
        try await ClusterHarness.with(nodes: 2) { cluster in
            let socket = try await cluster.connect(0, "/ws", user: "viewer")
            defer { socket.close() }
            let ids = (0..<20).map { "race-\($0)" }
            let answers = try await withThrowingTaskGroup(of: JSONValue.self) { group in
                for node in 0..<2 {
                    group.addTask { try await cluster.publish(node, .array(ids.map { Self.event(id: $0, note: $0) })) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let accepted = answers.reduce(0) { $0 + Int($1["accepted"]?.doubleValue ?? -100) }
            #expect(accepted == ids.count, "expected each id accepted once in all, got \(accepted): \(answers)")
            try await cluster.publish(0, Self.event(id: nil, note: "end"))
            let notes = try await Self.notices(socket)
            #expect(notes == ids + ["end"], "each id delivered once, in order; got \(notes)")
        }
    }

    @Test("Redis remembers at most --dedup-ids ids: the oldest is forgotten and accepted again")
    func boundedMemory() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--dedup-ids", "2"]) { cluster in
            for id in ["a", "b", "c"] { try await cluster.publish(0, Self.event(id: id, note: id)) }
            let remembered = try await cluster.redis.cli("ZCARD", "airavata:dedup:ids")
            #expect(remembered == "2", "expected 2 ids remembered, Redis holds \(remembered)")
            let oldest = try await cluster.publish(0, Self.event(id: "a", note: "a"))
            #expect(oldest["duplicates"]?.arrayValue == [], "the forgotten id is new again: \(oldest.jsonString)")
            let newest = try await cluster.publish(0, Self.event(id: "c", note: "c"))
            #expect(newest["duplicates"]?.arrayValue == [.integer(0)], "a remembered id: \(newest.jsonString)")
        }
    }

    @Test("past --dedup-window an id is new again")
    func windowEnds() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--dedup-window", "1s"]) { cluster in
            try await cluster.publish(0, Self.event(id: "w", note: "w"))
            let retry = try await cluster.publish(0, Self.event(id: "w", note: "w"))
            #expect(retry["duplicates"]?.arrayValue == [.integer(0)], "within the window: \(retry.jsonString)")
            // Reposting is harmless while the id is remembered: it answers duplicate until the window ends.
            let accepted = await eventually {
                let answer = try? await cluster.publish(0, Self.event(id: "w", note: "w"))
                return answer?["accepted"]?.doubleValue == 1
            }
            #expect(accepted, "expected the id accepted again once its 1 s window ended")
        }
    }
}
