import AiravataProtocol
import AiravataTestSupport
import Testing

/// A replay log that went back in time under the nodes (a failover to a replica that lagged,
/// a Redis restarted empty, a FLUSHALL): a client whose missed events are gone must be told
/// `recovery_failed`, never resumed as if nothing were missing; delivery then goes on.
@Suite("Cluster: a rewound or replaced replay log", .serialized)
struct LogRewindTests {
    static let stream = "airavata:events"
    static let floorKey = "airavata:events:floor"
    static let lossesKey = "airavata:events:losses"

    /// A client of alice's on `exp-r`, its session, and the cursor of the last event it saw.
    struct Listener {
        let socket: RawWebSocket
        let session: String
        var cursor: String
    }

    static func listen(_ cluster: ClusterHarness, _ node: Int, query: String = "") async throws -> (
        Listener, JSONValue
    ) {
        let token = try await cluster.token("alice", projects: ["proj-r"])
        let socket = try await RawWebSocket.connect(
            port: cluster.node(node).port, path: "/ws/experiments/exp-r?token=\(token)\(query)")
        let connected = try await socket.nextMessage()
        let session = try #require(connected["data"]?["sessionId"]?.stringValue, "greeting: \(connected.jsonString)")
        return (Listener(socket: socket, session: session, cursor: connected["cursor"]?.stringValue ?? ""), connected)
    }

    /// Publishes progress events and returns their cursors, in order.
    @discardableResult
    static func publish(_ cluster: ClusterHarness, _ sequences: ClosedRange<Int>) async throws -> [String] {
        let answer = try await cluster.publish(
            0, .array(sequences.map { ClusterEvents.progress(experiment: "exp-r", sequence: $0) }))
        return answer["cursors"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// Reads `count` progress events; returns the last one's cursor.
    static func receive(_ listener: Listener, _ count: Int) async throws -> String {
        var cursor = listener.cursor
        for _ in 0..<count {
            let event = try await listener.socket.nextMessage(ofType: "experiment_progress")
            cursor = try #require(event["cursor"]?.stringValue)
        }
        return cursor
    }

    /// A resume's outcome (`replay_complete` or `recovery_failed`), after its greeting; the
    /// session must still exist when `sessionKept` (Redis lost sessions with the log otherwise).
    static func resume(_ cluster: ClusterHarness, _ node: Int, _ listener: Listener, sessionKept: Bool = true)
        async throws -> (RawWebSocket, JSONValue)
    {
        let (again, greeting) = try await listen(
            cluster, node, query: "&session=\(listener.session)&cursor=\(listener.cursor)")
        #expect(greeting["data"]?["resumed"] == .bool(sessionKept), "greeting: \(greeting.jsonString)")
        while true {
            let message = try await again.socket.nextMessage()
            let action = message["data"]?["action"]?.stringValue
            if action == "replay_complete" || action == "recovery_failed" { return (again.socket, message) }
        }
    }

    static func ownership(_ cluster: ClusterHarness) async throws {
        try await cluster.publish(0, ClusterEvents.experiment(id: "exp-r", project: "proj-r", owner: "alice"))
    }

    @Test(
        "events lost from the log's end (a failover to a lagging replica): a resume from before them fails on any node")
    func rewound() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            try await Self.ownership(cluster)
            let (watcher, _) = try await Self.listen(cluster, 0)
            defer { watcher.socket.close() }
            var (away, _) = try await Self.listen(cluster, 0)
            try await Self.publish(cluster, 1...2)
            away.cursor = try await Self.receive(away, 2)
            away.socket.close()
            // Events the away client misses; the watcher sees them live.
            let lost = try await Self.publish(cluster, 3...5)
            #expect(try await Self.receive(watcher, 5) == lost.last)
            // What a promoted replica that lagged looks like to the nodes: the log ends before
            // the events they delivered, and their connections to Redis start again.
            #expect(lost.count == 3)
            try await Self.rewind(cluster, deleting: lost)
            // A node that never saw the lost events, and the node that did: both refuse.
            let late = try cluster.launch(name: "late")
            guard await eventually(within: .seconds(20), { await cluster.isReady(late) }) else {
                throw TestSupportError("the late node did not become ready")
            }
            for node in [late, 0] {
                let (socket, outcome) = try await Self.resume(cluster, node, away)
                defer { socket.close() }
                #expect(
                    outcome["data"]?["action"]?.stringValue == "recovery_failed",
                    "node \(node) answered \(outcome.jsonString): the events after \(away.cursor) are gone")
            }
            // Delivery goes on, to a resumed client too.
            let (resumed, _) = try await Self.resume(cluster, late, away)
            defer { resumed.close() }
            let next = try await Self.publish(cluster, 6...6)
            #expect(try await Self.receive(watcher, 1) == next.first)
            let live = try await resumed.nextMessage(ofType: "experiment_progress")
            #expect(live["data"]?["completedTasks"] == .integer(6))
            // A client that starts after the rewind resumes normally.
            var fresh = try await Self.listen(cluster, late).0
            let newest = try await Self.publish(cluster, 7...7)
            fresh.cursor = try await Self.receive(fresh, 1)
            #expect(fresh.cursor == newest.first)
            fresh.socket.close()
            let (back, outcome) = try await Self.resume(cluster, 0, fresh)
            defer { back.close() }
            #expect(outcome["data"]?["action"]?.stringValue == "replay_complete", "\(outcome.jsonString)")
        }
    }

    /// The node cannot know which lost events its clients missed: an event acknowledged just
    /// before a primary died can reach some nodes' subscriber connections and not others
    /// (`FailoverTests.laggingReplica` once saw ten clients of one node miss one so, and resume
    /// elsewhere as if complete). So every connected client is told, before the next event.
    @Test("a rewound log under connected clients: each is told recovery_failed (log_rewound) before any later event")
    func connectedClientsTold() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            try await Self.ownership(cluster)
            let (watcher, _) = try await Self.listen(cluster, 0)
            defer { watcher.socket.close() }
            let published = try await Self.publish(cluster, 1...3)
            #expect(try await Self.receive(watcher, 3) == published.last)
            #expect(published.count == 3)
            // All three: in the v3 format one entry (the first's id) holds them all.
            try await Self.rewind(cluster, deleting: published)
            let next = try await Self.publish(cluster, 4...4)
            let (notice, event) = try await Self.noticeThenEvent(watcher)
            #expect(notice != nil, "an event came before the notice: \(event?.jsonString ?? "none")")
            #expect(event?["cursor"]?.stringValue == next.first)
            #expect(notice?["data"]?["reason"]?.stringValue == "log_rewound", "\(notice?.jsonString ?? "none")")
            #expect(notice?["cursor"]?.stringValue == published[2], "the notice's cursor is the floor")
        }
    }

    /// What a promoted replica that lagged looks like to the nodes: the log loses `cursors`
    /// (the newest events they delivered) and their subscriber connections start again; the
    /// floor must rise to the last of them.
    static func rewind(_ cluster: ClusterHarness, deleting cursors: [String]) async throws {
        _ = try await cluster.redis.cli(arguments: ["XDEL", stream] + cursors)
        _ = try await cluster.redis.cli("CLIENT", "KILL", "TYPE", "pubsub")
        let floorRaised = await eventually(within: .seconds(10)) {
            (try? await cluster.redis.cli("GET", floorKey))?.contains(cursors.last ?? "-") == true
        }
        #expect(floorRaised, "the node did not record where the log was rewound")
    }

    /// Reads until the next progress event (or, `noticeOnly`, the next `recovery_failed`);
    /// returns the `recovery_failed` notice seen before it (nil if none) and the event.
    static func noticeThenEvent(_ listener: Listener, noticeOnly: Bool = false) async throws -> (
        notice: JSONValue?, event: JSONValue?
    ) {
        var notice: JSONValue?
        while true {
            let message = try await listener.socket.nextMessage()
            if message["type"]?.stringValue == "experiment_progress" { return (notice, message) }
            if message["data"]?["action"]?.stringValue == "recovery_failed" {
                notice = message
                if noticeOnly { return (notice, nil) }
            }
        }
    }

    /// The other half of a failover that lost the last event: one node delivered it, another
    /// never got it (its connection to the old primary dropped first). The second node's own
    /// position is still in the log, so only the first can find the loss; it records the lost
    /// cursor, and the second learns it on a heartbeat (only its subscriber was cut off, and
    /// it is back before the loss is found), or in its gap fill, before anything from the new
    /// log (`returnsAfterLoss`: cut off from Redis altogether until after the loss is recorded).
    @Test(
        "an event lost with the log that one node delivered and another never got: both nodes' clients are told",
        arguments: [false, true])
    func lostBeforeItReachedAnotherNode(returnsAfterLoss: Bool) async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            // The second node reaches Redis as a user of its own, so that its subscription alone can be cut.
            _ = try await cluster.redis.cli("ACL", "SETUSER", "second", "on", ">pw", "~*", "&*", "+@all")
            let second = try cluster.launch(
                name: "second", extraArguments: ["--redis-url", "redis://second:pw@127.0.0.1:\(cluster.redis.port)/0"])
            guard await eventually(within: .seconds(20), { await cluster.isReady(second) }) else {
                throw TestSupportError("the second node did not become ready; \(cluster.logTail(second))")
            }
            try await Self.ownership(cluster)
            let (first, _) = try await Self.listen(cluster, 0)
            defer { first.socket.close() }
            let (other, _) = try await Self.listen(cluster, second)
            defer { other.socket.close() }
            let before = try await Self.publish(cluster, 1...2)
            #expect(try await Self.receive(first, 2) == before.last)
            #expect(try await Self.receive(other, 2) == before.last)

            // Redis disconnects the second node's subscriber and refuses it until its channels are back.
            func subscribers() async throws -> Int {
                let answer = try await cluster.redis.cli("PUBSUB", "NUMSUB", "airavata:events:v3")
                return Int(answer.split(separator: "\n").last.map(String.init) ?? "") ?? -1
            }
            func readmit() async throws {
                _ = try await cluster.redis.cli("ACL", "SETUSER", "second", "on", "allchannels")
                #expect(
                    await eventually(within: .seconds(20)) { (try? await subscribers()) == 2 },
                    "the second node did not subscribe again")
            }
            if returnsAfterLoss {
                // No heartbeat can read the loss records either: only its gap fill can tell.
                _ = try await cluster.redis.cli("ACL", "SETUSER", "second", "off")
                _ = try await cluster.redis.cli("CLIENT", "KILL", "USER", "second")
            } else {
                _ = try await cluster.redis.cli("ACL", "SETUSER", "second", "resetchannels")
            }
            #expect(await eventually(within: .seconds(10)) { (try? await subscribers()) == 1 })
            let lost = try await Self.publish(cluster, 3...3)
            #expect(try await Self.receive(first, 1) == lost.first)
            // The log loses it, as a promoted replica that lagged would.
            _ = try await cluster.redis.cli("XDEL", Self.stream, lost[0])
            if !returnsAfterLoss { try await readmit() }
            // The first node's subscriber drops; its gap fill finds its last event gone.
            _ = try await cluster.redis.cli("CLIENT", "KILL", "TYPE", "pubsub", "USER", "default")
            let recorded = await eventually(within: .seconds(10)) {
                (try? await cluster.redis.cli("XRANGE", Self.lossesKey, "-", "+"))?.contains(lost[0]) == true
            }
            #expect(recorded, "the first node did not record the lost event")

            let next: [String]
            if returnsAfterLoss {
                // In the log before the second node reads it: the notice must still come first.
                next = try await Self.publish(cluster, 4...4)
                try await readmit()
            } else {
                // Learnt on a heartbeat, whenever it comes: wait for it, then the next event.
                let notice = try await Self.noticeThenEvent(other, noticeOnly: true).notice
                #expect(notice?["data"]?["reason"]?.stringValue == "log_rewound", "\(notice?.jsonString ?? "none")")
                next = try await Self.publish(cluster, 4...4)
            }
            for (name, listener) in [("first", first), ("second", other)] {
                let (notice, event) = try await Self.noticeThenEvent(listener)
                #expect(event?["cursor"]?.stringValue == next.first, "\(name): \(event?.jsonString ?? "none")")
                if name == "first" || returnsAfterLoss {
                    #expect(
                        notice?["data"]?["reason"]?.stringValue == "log_rewound",
                        "\(name) node's client: \(notice?.jsonString ?? "no notice before the next event")")
                }
            }
        }
    }

    @Test("Redis restarted empty: a resume from the old log fails, delivery goes on")
    func restartedEmpty() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            try await Self.ownership(cluster)
            let (watcher, _) = try await Self.listen(cluster, 0)
            defer { watcher.socket.close() }
            var (away, _) = try await Self.listen(cluster, 0)
            try await Self.publish(cluster, 1...1)
            away.cursor = try await Self.receive(away, 1)
            _ = try await Self.receive(watcher, 1)
            away.socket.close()
            cluster.redis.kill()
            try await cluster.redis.launch()
            // Readiness outlasts a short outage (the grace): wait until the node accepts events again.
            guard await eventually(within: .seconds(20), { (try? await Self.ownership(cluster)) != nil }) else {
                throw TestSupportError("the node did not accept events after Redis came back")
            }
            // Sessions went with the data: the client is told its session expired.
            let (socket, outcome) = try await Self.resume(cluster, 0, away, sessionKept: false)
            defer { socket.close() }
            #expect(outcome["data"]?["action"]?.stringValue == "recovery_failed", "\(outcome.jsonString)")
            try await Self.publish(cluster, 2...2)
            let live = try await socket.nextMessage(ofType: "experiment_progress")
            #expect(live["data"]?["completedTasks"] == .integer(2))
            let watched = try await watcher.socket.nextMessage(ofType: "experiment_progress")
            #expect(watched["data"]?["completedTasks"] == .integer(2))
        }
    }

    @Test("FLUSHALL: a node without the events in memory fails the resume; delivery goes on")
    func flushed() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            try await Self.ownership(cluster)
            let (watcher, _) = try await Self.listen(cluster, 0)
            defer { watcher.socket.close() }
            var (away, _) = try await Self.listen(cluster, 0)
            try await Self.publish(cluster, 1...1)
            away.cursor = try await Self.receive(away, 1)
            away.socket.close()
            try await Self.publish(cluster, 2...3)
            _ = try await Self.receive(watcher, 3)
            _ = try await cluster.redis.cli("FLUSHALL")
            try await Self.ownership(cluster)
            let late = try cluster.launch(name: "late")
            guard await eventually(within: .seconds(20), { await cluster.isReady(late) }) else {
                throw TestSupportError("the late node did not become ready")
            }
            let (socket, outcome) = try await Self.resume(cluster, late, away, sessionKept: false)
            defer { socket.close() }
            #expect(
                outcome["data"]?["action"]?.stringValue == "recovery_failed",
                "events 2 and 3 are gone with the log: \(outcome.jsonString)")
            try await Self.publish(cluster, 4...4)
            let live = try await socket.nextMessage(ofType: "experiment_progress")
            #expect(live["data"]?["completedTasks"] == .integer(4))
            let watched = try await watcher.socket.nextMessage(ofType: "experiment_progress")
            #expect(watched["data"]?["completedTasks"] == .integer(4))
        }
    }
}
