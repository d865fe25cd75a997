import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// The v3 replay log (docs/architecture.md, "Sessions, resume and the replay log"): one entry
/// per publish call, its id the call's first cursor, trimmed to `--replay-length` events
/// rather than entries.
@Suite("Cluster: v3 blocks in the replay log", .serialized)
struct BlockLogTests {
    /// A client's session and greeting cursor, for resuming it later.
    static func session(_ cluster: ClusterHarness) async throws -> String {
        let (socket, connected) = try await ClusterResumeTests.open(cluster, 0, "/ws", user: "alice")
        socket.close()
        return try #require(connected["data"]?["sessionId"]?.stringValue)
    }

    /// Publishes `count` system notices in one request; returns their cursors.
    static func publishBlock(_ cluster: ClusterHarness, _ names: [String]) async throws -> [String] {
        let answer = try await cluster.publish(0, .array(names.map { ClusterEvents.system($0) }))
        let cursors = answer["cursors"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(cursors.count == names.count, "answer: \(answer.jsonString)")
        return cursors
    }

    /// Resumes `session` after `cursor` on `node`: the notices replayed, and the outcome.
    static func resume(_ cluster: ClusterHarness, _ node: Int, session: String, after cursor: String)
        async throws -> (notices: [String], outcome: String?)
    {
        let (socket, greeting) = try await ClusterResumeTests.open(
            cluster, node, "/ws", user: "alice", query: "&session=\(session)&cursor=\(cursor)")
        defer { socket.close() }
        #expect(greeting["data"]?["resumed"] == .bool(true), "greeting: \(greeting.jsonString)")
        var notices: [String] = []
        while true {
            let message = try await socket.nextMessage()
            if let action = message["data"]?["action"]?.stringValue,
                action == "replay_complete" || action == "recovery_failed"
            {
                return (notices, action)
            }
            if let notice = message["data"]?["notice"]?.stringValue { notices.append(notice) }
        }
    }

    /// A node that has routed none of the events: only the log can answer its resumes.
    static func lateNode(_ cluster: ClusterHarness, _ name: String) async throws -> Int {
        let node = try cluster.launch(name: name, extraArguments: ["--bus-format", "v3"])
        guard await eventually(within: .seconds(20), { await cluster.isReady(node) }) else {
            throw TestSupportError("the new node did not become ready")
        }
        return node
    }

    @Test("a publish call is one log entry; a resume from inside it, read from the log, gets exactly the events after")
    func resumeInsideABlock() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--bus-format", "v3"]) { cluster in
            let session = try await Self.session(cluster)
            let names = (1...6).map { "block-\($0)" }
            let cursors = try await Self.publishBlock(cluster, names)
            let parsed = cursors.compactMap { EventCursor($0) }
            #expect(parsed.count == 6)
            for (earlier, later) in zip(parsed, parsed.dropFirst()) {
                #expect(later.milliseconds == earlier.milliseconds && later.sequence == earlier.sequence + 1)
            }
            // One entry, named by the first cursor, holding the six events; none named by the
            // others, and the next entry starts above them.
            let entry = try await cluster.redis.cli("XRANGE", "airavata:events", cursors[0], cursors[0])
            #expect(entry.hasPrefix("\(cursors[0])\nn\n6\nb\n"), "entry: \(entry)")
            #expect(try await cluster.redis.cli("XRANGE", "airavata:events", cursors[1], cursors[5]).isEmpty)
            let next = try await Self.publishBlock(cluster, ["block-7"])
            #expect(next.compactMap { EventCursor($0) }.allSatisfy { $0 > parsed[5] }, "\(next) after \(cursors)")

            let late = try await Self.lateNode(cluster, "late")
            let fromInside = try await Self.resume(cluster, late, session: session, after: cursors[2])
            #expect(fromInside.outcome == "replay_complete")
            #expect(fromInside.notices == ["block-4", "block-5", "block-6", "block-7"])
            let fromLast = try await Self.resume(cluster, late, session: session, after: cursors[5])
            #expect(fromLast.outcome == "replay_complete" && fromLast.notices == ["block-7"])
            // A cursor past the block that was never given out is not held.
            let below = "\(parsed[0].milliseconds)-\(parsed[0].sequence + 100)"
            #expect(try await Self.resume(cluster, late, session: session, after: below).outcome == "recovery_failed")
        }
    }

    @Test("a block after an entry that a writer of an older release appended starts above that entry")
    func afterAnOlderWriter() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--bus-format", "v3"]) { cluster in
            let listener = try await cluster.connect(0, "/ws", user: "u")
            defer { listener.close() }
            _ = try await Self.publishBlock(cluster, ["before"])
            #expect(try await listener.nextMessage(ofType: "system_status")["data"]?["notice"] == .string("before"))
            // Appended with an id of its own ten minutes ahead, as any writer may (Redis takes
            // the newest id as the base for the next): the block's cursors start above it.
            let ahead = UInt64(Date().timeIntervalSince1970 * 1000) + 600_000
            let older =
                "2\tsystem_status\t1\t\t\t\t\t\t\n"
                + #"{"type":"system_status","id":"older","timestamp":"2026-12-06T00:00:00Z","data":{"notice":"older"}"#
            try await cluster.redis.cli("XADD", "airavata:events", "\(ahead)-0", "e", older)
            let cursors = try await Self.publishBlock(cluster, ["after-1", "after-2", "after-3"])
            #expect(cursors == (1...3).map { "\(ahead)-\($0)" })
            // The node reads the older entry from the log (its cursor is ahead of the clock)
            // and delivers it before the block, in cursor order.
            for notice in ["older", "after-1", "after-2", "after-3"] {
                let message = try await listener.nextMessage(ofType: "system_status")
                #expect(message["data"]?["notice"]?.stringValue == notice, "got \(message.jsonString)")
            }
        }
    }

    @Test("a node writing an older form keeps the log floor above the newest block, which older releases cannot read")
    func floorAboveBlocksForOlderReaders() async throws {
        let formats = [["--bus-format", "v3"], ["--bus-format", "v2"]]
        try await ClusterHarness.with(nodes: 2, perNode: formats) { cluster in
            func floor() async -> String { (try? await cluster.redis.cli("GET", "airavata:events:floor")) ?? "" }
            let first = try await Self.publishBlock(cluster, ["b-1", "b-2", "b-3"])
            let raised = await eventually(within: .seconds(10)) { await floor() == first[2] }
            #expect(raised, "the floor is not at \(first[2]), where the newest block ends")
            // A v2 entry needs no floor; the next block moves it.
            try await cluster.publish(1, ClusterEvents.system("v2-entry"))
            let second = try await Self.publishBlock(cluster, ["b-4", "b-5"])
            let moved = await eventually(within: .seconds(10)) { await floor() == second[1] }
            #expect(moved, "the floor is not at \(second[1]), where the newest block ends")
        }
    }

    @Test(
        "the log is trimmed to --replay-length events, not entries: older resumes fail, newer ones read across blocks")
    func trimmedByEvents() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--bus-format", "v3", "--replay-length", "100"]) {
            cluster in
            let session = try await Self.session(cluster)
            var cursors: [String] = []
            for call in 0..<60 {
                cursors += try await Self.publishBlock(cluster, (0..<10).map { "n\(call * 10 + $0)" })
            }
            // 600 events in 60 entries. Trimmed by entries (the backstop alone), all 60 would
            // be kept; by events, 100 to 164 and what the approximate trim leaves of a stream
            // node.
            // Trimmed once 64 more than the length are held, down to the length.
            let held = Int(try await cluster.redis.cli("GET", "airavata:events:held")) ?? -1
            #expect((100...164).contains(held), "blocks count \(held) events")
            let entries = Int(try await cluster.redis.cli("XLEN", "airavata:events")) ?? -1
            #expect(entries >= 10 && entries <= 24, "\(entries) entries in the log")

            let late = try await Self.lateNode(cluster, "late")
            #expect(
                try await Self.resume(cluster, late, session: session, after: cursors[0]).outcome == "recovery_failed")
            // Inside the 59th call's block: the rest of it and the two calls after it.
            let recent = try await Self.resume(cluster, late, session: session, after: cursors[587])
            #expect(recent.outcome == "replay_complete")
            #expect(recent.notices == (588..<600).map { "n\($0)" })

            // Without the block list (evicted, say) the count starts again from the next
            // block; the trim never takes the block just appended.
            try await cluster.redis.cli("DEL", "airavata:events:blocks")
            var later: [String] = []
            // The count stood at 110: the sixth call passes the margin, finds only its own
            // blocks listed, and must not cut the log down to the block just appended.
            for call in 60..<66 {
                later += try await Self.publishBlock(cluster, (0..<10).map { "n\(call * 10 + $0)" })
            }
            let kept = Int(try await cluster.redis.cli("XLEN", "airavata:events")) ?? -1
            #expect(kept >= 10, "the trim left \(kept) entries after the block list was lost")
            for call in 66..<80 {
                later += try await Self.publishBlock(cluster, (0..<10).map { "n\(call * 10 + $0)" })
            }
            let recounted = Int(try await cluster.redis.cli("GET", "airavata:events:held")) ?? -1
            #expect((100...164).contains(recounted), "blocks count \(recounted) events")
            let latest = try await Self.lateNode(cluster, "later")
            let fromLast = try await Self.resume(cluster, latest, session: session, after: later[192])
            #expect(fromLast.outcome == "replay_complete")
            #expect(fromLast.notices == (793..<800).map { "n\($0)" })
        }
    }
}
