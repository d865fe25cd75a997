import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Testing

/// Sessions and resume on one node: what `connected` says, what a resumed client gets back,
/// and what it is told when it cannot get everything back.
@Suite("Sessions and resume")
struct ResumeTests {
    /// Opens a socket and returns it with its `connected` message.
    static func open(_ node: TestGateway, _ path: String, user: String, projects: [String] = [], query: String = "")
        async throws -> (RawWebSocket, JSONValue)
    {
        let token = try await node.token(user, projects: projects)
        let socket = try await RawWebSocket.connect(port: node.port, path: "\(path)?token=\(token)\(query)")
        let connected = try await socket.nextMessage()
        return (socket, connected)
    }

    static func taskIDs(_ messages: [JSONValue]) -> [String] {
        messages.compactMap { $0["data"]?["task"]?["id"]?.stringValue }
    }

    @Test("after authentication a connection is told its session, node, cursor and subscriptions")
    func connectedMessage() async throws {
        try await TestGateway.with { node in
            let (socket, connected) = try await Self.open(
                node, "/ws/experiments/exp-1", user: "alice", projects: ["proj-1"])
            defer { socket.close() }
            #expect(connected["type"]?.stringValue == "system_status")
            let data = try #require(connected["data"])
            #expect(data["action"]?.stringValue == "connected")
            #expect(data["nodeId"]?.stringValue == "test-node")
            #expect(data["resumed"] == .bool(false))
            #expect((data["sessionId"]?.stringValue ?? "").count == 32)
            #expect(connected["cursor"]?.stringValue?.contains("-") == true)
            #expect(
                data["subscriptions"]
                    == .array([.object(["resourceType": .string("experiment"), "resourceId": .string("exp-1")])]))
        }
    }

    @Test("a resumed session gets its path and explicit subscriptions back and exactly the events it missed, in order")
    func resumeReplaysTheGap() async throws {
        try await TestGateway.with { node in
            // Task events reach users through their experiment's owner and project.
            try await node.publish(
                .array([
                    Events.experiment(id: "exp-1", project: "proj-1", owner: "alice"),
                    Events.experiment(id: "exp-9", project: "proj-1", owner: "bob"),
                    Events.experiment(id: "exp-elsewhere", project: "proj-1", owner: "bob"),
                ]))
            let (first, connected) = try await Self.open(
                node, "/ws/experiments/exp-1", user: "alice", projects: ["proj-1"])
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            #expect(try await node.subscribe(first, "task", "task-x")["data"]?["status"]?.stringValue == "success")
            try await node.publish(Events.task(id: "task-seen", experiment: "exp-1"))
            let seen = try await first.nextMessage(ofType: "task_updated")
            let cursor = try #require(seen["cursor"]?.stringValue)
            first.close()

            // While away: two for the path subscription, one for the explicit one, one for nobody.
            try await node.publish(
                .array([
                    Events.task(id: "task-1", experiment: "exp-1"),
                    Events.task(id: "task-other", experiment: "exp-elsewhere"),
                    Events.task(id: "task-x", experiment: "exp-9"),
                    Events.task(id: "task-2", experiment: "exp-1"),
                ]))

            let (second, again) = try await Self.open(
                node, "/ws", user: "alice", projects: ["proj-1"], query: "&session=\(session)&cursor=\(cursor)")
            defer { second.close() }
            #expect(again["data"]?["action"]?.stringValue == "connected")
            #expect(again["data"]?["resumed"] == .bool(true))
            #expect(again["data"]?["sessionId"]?.stringValue == session)
            #expect(again["data"]?["subscriptions"]?.arrayValue?.count == 2)
            var replayed: [JSONValue] = []
            while true {
                let message = try await second.nextMessage()
                if message["data"]?["action"]?.stringValue == "replay_complete" {
                    #expect(message["data"]?["replayed"] == .number("3"))
                    break
                }
                replayed.append(message)
            }
            #expect(Self.taskIDs(replayed) == ["task-1", "task-x", "task-2"])

            // Live again, once each, with both subscriptions; the system broadcast after them
            // reaches every connection, so whatever precedes it is all that came.
            try await node.publish(
                .array([
                    Events.task(id: "task-3", experiment: "exp-1"), Events.task(id: "task-x", experiment: "exp-9"),
                    Events.system(note: "end"),
                ])
            )
            var live: [JSONValue] = []
            while true {
                let message = try await second.nextMessage()
                if message["data"]?["notice"]?.stringValue == "end" { break }
                live.append(message)
            }
            #expect(
                Self.taskIDs(live) == ["task-3", "task-x"] && live.count == 2,
                "expected task-3 then task-x once each before the sentinel, got \(live.map(\.jsonString))")
        }
    }

    @Test("resuming another user's session is refused with 1008")
    func anotherUsersSession() async throws {
        try await TestGateway.with { node in
            let (alice, connected) = try await Self.open(node, "/ws/user", user: "alice")
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            let cursor = try #require(connected["cursor"]?.stringValue)
            alice.close()
            let (mallory, reply) = try await Self.open(
                node, "/ws", user: "mallory", query: "&session=\(session)&cursor=\(cursor)")
            defer { mallory.close() }
            #expect(reply["type"]?.stringValue == "error")
            #expect(reply["error"]?.stringValue == "Session belongs to another user")
            #expect(try await mallory.expectClose().code == 1008)
        }
    }

    @Test("an unknown or expired session starts afresh and says so")
    func unknownSession() async throws {
        try await TestGateway.with { node in
            let (socket, connected) = try await Self.open(
                node, "/ws/user", user: "alice", query: "&session=0123456789abcdef0123456789abcdef&cursor=1-1")
            defer { socket.close() }
            #expect(connected["data"]?["resumed"] == .bool(false))
            #expect(connected["data"]?["sessionId"]?.stringValue != "0123456789abcdef0123456789abcdef")
            let outcome = try await socket.nextMessage()
            #expect(outcome["data"]?["action"]?.stringValue == "recovery_failed")
            #expect(outcome["data"]?["reason"]?.stringValue == "session_expired")
            #expect(outcome["cursor"]?.stringValue != nil)
        }
    }

    @Test("a cursor that fell out of the replay window is reported, and live events follow")
    func cursorOutOfWindow() async throws {
        try await TestGateway.with(replayLength: 100) { node in
            try await node.publish(Events.experiment(id: "exp-1", project: "p", owner: "alice"))
            let (first, connected) = try await Self.open(node, "/ws/experiments/exp-1", user: "alice", projects: ["p"])
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            let cursor = try #require(connected["cursor"]?.stringValue)
            first.close()
            try await node.publish(
                .array((0..<150).map { Events.task(id: "t-\($0)", experiment: "exp-1") }))
            let (second, again) = try await Self.open(
                node, "/ws", user: "alice", projects: ["p"], query: "&session=\(session)&cursor=\(cursor)")
            defer { second.close() }
            #expect(again["data"]?["resumed"] == .bool(true))
            let outcome = try await second.nextMessage()
            #expect(outcome["data"]?["action"]?.stringValue == "recovery_failed")
            #expect(outcome["data"]?["reason"]?.stringValue == "cursor_out_of_window")
            try await node.publish(Events.task(id: "t-live", experiment: "exp-1"))
            let live = try await second.nextMessage()
            #expect(live["data"]?["task"]?["id"]?.stringValue == "t-live")
        }
    }

    @Test("a malformed cursor is reported as such, not as a crash")
    func malformedCursor() async throws {
        try await TestGateway.with { node in
            let (first, connected) = try await Self.open(node, "/ws/user", user: "alice")
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            first.close()
            let (second, _) = try await Self.open(
                node, "/ws", user: "alice", query: "&session=\(session)&cursor=not-a-cursor")
            defer { second.close() }
            let outcome = try await second.nextMessage()
            #expect(outcome["data"]?["reason"]?.stringValue == "invalid_cursor")
        }
    }
}

extension ResumeTests {
    @Test("a session whose cursor predates anything in memory is served from the replay log")
    func replayFromTheLog() async throws {
        try await TestGateway.with { node in
            // Nothing routed yet: the starting cursor is the log's epoch mark, which the
            // node's memory of routed events cannot hold.
            let (first, connected) = try await Self.open(node, "/ws/user", user: "alice")
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            let cursor = try #require(connected["cursor"]?.stringValue)
            first.close()
            try await node.publish(
                .array((1...3).map { Events.notification(user: "alice", title: "n\($0)") }))
            let readsBefore = node.gateway.replay.counts.reads
            let (second, _) = try await Self.open(
                node, "/ws", user: "alice", query: "&session=\(session)&cursor=\(cursor)")
            defer { second.close() }
            var titles: [String] = []
            while true {
                let message = try await second.nextMessage()
                if message["data"]?["action"]?.stringValue == "replay_complete" { break }
                titles.append(message["data"]?["title"]?.stringValue ?? "?")
            }
            #expect(titles == ["n1", "n2", "n3"])
            #expect(node.gateway.replay.counts.reads == readsBefore + 1)
        }
    }
}

extension ResumeTests {
    @Test("a cursor the log never held costs no log read and is reported out of the window")
    func bogusCursorReadsNothing() async throws {
        try await TestGateway.with { node in
            let (first, connected) = try await Self.open(node, "/ws/user", user: "alice")
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            first.close()
            try await node.publish(Events.notification(user: "alice", title: "n"))
            let readsBefore = node.gateway.replay.counts.reads
            let (second, _) = try await Self.open(node, "/ws", user: "alice", query: "&session=\(session)&cursor=1-0")
            defer { second.close() }
            let outcome = try await second.nextMessage()
            #expect(outcome["data"]?["reason"]?.stringValue == "cursor_out_of_window")
            #expect(node.gateway.replay.counts.reads == readsBefore)
        }
    }

    @Test("a replay larger than a client may take is refused with replay_too_large")
    func replayTooLarge() async throws {
        var configuration = GatewayConfiguration(nodeID: "test-node", statsIntervalSeconds: 0)
        configuration.maxReplayEvents = 2
        try await TestGateway.with(gateway: configuration) { node in
            let (first, connected) = try await Self.open(node, "/ws/user", user: "alice")
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            let cursor = try #require(connected["cursor"]?.stringValue)
            first.close()
            try await node.publish(.array((1...3).map { Events.notification(user: "alice", title: "n\($0)") }))
            let (second, _) = try await Self.open(
                node, "/ws", user: "alice", query: "&session=\(session)&cursor=\(cursor)")
            defer { second.close() }
            let outcome = try await second.nextMessage()
            #expect(outcome["data"]?["reason"]?.stringValue == "replay_too_large")
        }
    }
}
