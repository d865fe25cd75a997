import AiravataClient
import AiravataCluster
import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Testing

/// What a node reads from Redis is input like any other: bad messages on the events
/// channel, failed releases during an outage, and sessions that would grow without bound.
@Suite("Cluster: Redis as input", .serialized)
struct RedisInputTests {
    static let channel = "airavata:events"

    /// A bus message as the publish script writes it, with a chosen cursor and body.
    static func busMessage(_ cursor: String, notice: String, accepted: String = "1", routing: String = "{}") -> String {
        cursor + "\n"
            + #"{"t":"system_status","i":"forged-\#(notice)","s":"2024-01-01T00:00:00Z","a":\#(accepted),"r":\#(routing),"d":{"notice":"\#(notice)"}}"#
    }

    /// Opens a connection and says whether it was admitted (its first message is `connected`).
    static func admitted(_ cluster: ClusterHarness, user: String) async throws -> RawWebSocket? {
        let token = try await cluster.token(user)
        let socket = try await RawWebSocket.connect(port: cluster.node(0).port, path: "/ws?token=\(token)")
        let first = try await socket.nextMessage()
        guard first["data"]?["action"]?.stringValue == "connected" else {
            socket.close()
            return nil
        }
        return socket
    }

    static func noPermissionErrors(_ cluster: ClusterHarness) async throws -> Int {
        let info = try await cluster.redis.cli("INFO", "errorstats")
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("errorstat_NOPERM:") }),
            let count = line.split(separator: "=").last.flatMap({ Int($0) })
        else { return 0 }
        return count
    }

    /// How many calls of one command Redis refused (an ACL, READONLY, OOM), from `INFO commandstats`.
    static func rejectedCalls(_ cluster: ClusterHarness, _ command: String) async throws -> Int {
        let info = try await cluster.redis.cli("INFO", "commandstats")
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
            let field = line.split(separator: ",").first(where: { $0.hasPrefix("rejected_calls=") }),
            let count = Int(field.dropFirst("rejected_calls=".count))
        else { return 0 }
        return count
    }

    @Test("bad messages on the events channel neither crash nor wedge the node, and are not delivered")
    func hostileBusMessages() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            let listener = try await cluster.connect(0, "/ws", user: "u")
            defer { listener.close() }
            try await cluster.publish(0, ClusterEvents.system("first"))
            let first = try await listener.nextMessage()
            let cursor = try #require(first["cursor"]?.stringValue.flatMap { EventCursor($0) })
            let next = "\(cursor.milliseconds)-\(cursor.sequence + 1)"
            // Each its own cursor: one the node has passed is dropped before it is decoded.
            func later(_ step: UInt64) -> String { "\(cursor.milliseconds)-\(cursor.sequence + 2 + step)" }

            for payload in [
                // Numbers out of Int64's range used to trap the decoder, killing the node.
                Self.busMessage(next, notice: "huge-number", accepted: "1e300"),
                Self.busMessage(next, notice: "negative-huge", accepted: "-9.3e18"),
                // Cursors far beyond the log would make the node drop every real event below them.
                Self.busMessage("99999999999999-0", notice: "future"),
                Self.busMessage("18446744073709551615-18446744073709551615", notice: "max"),
                Self.busMessage("not-a-cursor", notice: "malformed"),
                "no newline at all",
                "\(cursor.milliseconds)-\(cursor.sequence + 2)\n{\"t\":7}",
                // Routing ids pick recipients and become keys: held to the rules for client input.
                Self.busMessage(later(1), notice: "bad-experiment", routing: #"{"e":"has space"}"#),
                Self.busMessage(
                    later(2), notice: "long-task", routing: #"{"k":"\#(String(repeating: "t", count: 129))"}"#),
                Self.busMessage(later(3), notice: "control-user", routing: #"{"u":"bell\u0007"}"#),
                Self.busMessage(later(4), notice: "empty-owner", routing: #"{"o":""}"#),
                Self.busMessage(later(5), notice: "number-project", routing: #"{"p":7}"#),
            ] {
                try await cluster.redis.cli("PUBLISH", Self.channel, payload)
            }

            try await cluster.publish(0, ClusterEvents.system("second"))
            let second = try await listener.nextMessage()
            #expect(
                second["data"]?["notice"]?.stringValue == "second",
                "expected the real event after the forged ones, got \(second.jsonString)")
            let secondCursor = try #require(second["cursor"]?.stringValue.flatMap { EventCursor($0) })
            #expect(secondCursor > cursor)
            #expect(await cluster.readiness(0) == 200)

            // And the node keeps its position: later events still flow.
            try await cluster.publish(0, ClusterEvents.system("third"))
            let third = try await listener.nextMessage()
            #expect(third["data"]?["notice"]?.stringValue == "third", "got \(third.jsonString)")
        }
    }

    @Test("bad loss records neither crash nor wedge the node; a forged one costs its clients one notice")
    func hostileLossRecords() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            let listener = try await cluster.connect(0, "/ws", user: "u")
            defer { listener.close() }
            let key = "airavata:events:losses"
            // Unreadable records (skipped, logged), then a forged cursor far past every real one,
            // twelve times: all sixteen are read in one pass.
            for fields in [
                ["cursor", "not-a-cursor"], ["other", "1-1"], ["cursor", String(repeating: "9", count: 5_000)],
                ["cursor", "1-1", "extra", "x"],
            ] {
                _ = try await cluster.redis.cli(arguments: ["XADD", key, "*"] + fields)
            }
            for _ in 0..<12 { _ = try await cluster.redis.cli("XADD", key, "*", "cursor", "99999999999999-0") }
            let notice = try await listener.nextMessage(timeout: .seconds(10))
            #expect(notice["data"]?["reason"]?.stringValue == "log_rewound", "\(notice.jsonString)")
            try await cluster.publish(0, ClusterEvents.system("after"))
            var notices = 0
            while true {
                let message = try await listener.nextMessage()
                if message["data"]?["notice"]?.stringValue == "after" { break }
                if message["data"]?["action"]?.stringValue == "recovery_failed" { notices += 1 }
            }
            #expect(notices == 0, "the same forged record again cost \(notices) more notices")
            #expect(await cluster.readiness(0) == 200)
        }
    }

    @Test("an experiment event whose ownership record Redis refuses is refused whole (503), and nothing is published")
    func ownershipRecordRefused() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            let listener = try await cluster.connect(0, "/ws/projects/p-9", user: "admin", roles: ["admin"])
            defer { listener.close() }
            let service = try await cluster.token("producer", roles: ["service"])
            let event = ClusterEvents.experiment(id: "e-9", project: "p-9", owner: "u-9")
            try await cluster.redis.cli("ACL", "SETUSER", "default", "-hset")
            let refused = try await cluster.http(0).publish(json: event.jsonString, token: service)
            #expect(refused.status == 503, "\(refused.status): \(refused.bodyString)")
            #expect(refused.headers.first { $0.0.lowercased() == "retry-after" }?.1 == "1")
            try await cluster.redis.cli("ACL", "SETUSER", "default", "+hset")
            let accepted = try await cluster.http(0).publish(json: event.jsonString, token: service)
            #expect(accepted.status == 202, "\(accepted.status): \(accepted.bodyString)")
            // Only the accepted one reaches the project's subscriber.
            let first = try await listener.nextMessage(ofType: "experiment_updated")
            let cursor = first["cursor"]?.stringValue
            #expect(try JSONValue(parsing: accepted.bodyString)["cursors"]?.arrayValue?.first?.stringValue == cursor)
        }
    }

    @Test("releases refused during an outage are given back: the user can connect again without a restart")
    func releasesAfterOutage() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--max-connections-per-user", "2"]) { cluster in
            var open = [
                try await cluster.connect(0, "/ws", user: "carol"), try await cluster.connect(0, "/ws", user: "carol"),
            ]
            // The releases' script fails as it would while Redis is away.
            let before = try await Self.noPermissionErrors(cluster)
            try await cluster.redis.cli("ACL", "SETUSER", "default", "-eval", "-evalsha")
            open.forEach { $0.close() }
            open = []
            let failed = await eventually(within: .seconds(10)) {
                (try? await Self.noPermissionErrors(cluster)) ?? 0 >= before + 2
            }
            #expect(failed, "the node's two releases did not reach Redis and fail")
            // Tried while Redis still refuses: refused, and what is owed stays owed.
            #expect(try await Self.admitted(cluster, user: "carol") == nil)
            try await cluster.redis.cli("ACL", "SETUSER", "default", "+eval", "+evalsha")

            for attempt in 1...2 {
                let socket = try await Self.admitted(cluster, user: "carol")
                #expect(socket != nil, "connection \(attempt) of 2 was refused: a stale count survived the outage")
                if let socket { open.append(socket) }
            }
            defer { open.forEach { $0.close() } }
            #expect(try await Self.admitted(cluster, user: "carol") == nil, "the limit of 2 must still hold")
        }
    }

    @Test("after a reconnect the node rewrites its counts, clearing users it no longer counts")
    func reconnectRewritesCounts() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--max-connections-per-user", "2"]) { cluster in
            let sockets = [
                try await cluster.connect(0, "/ws", user: "carol"), try await cluster.connect(0, "/ws", user: "carol"),
            ]
            let before = try await Self.noPermissionErrors(cluster)
            try await cluster.redis.cli("ACL", "SETUSER", "default", "-eval", "-evalsha")
            sockets.forEach { $0.close() }
            #expect(
                await eventually(within: .seconds(10)) {
                    (try? await Self.noPermissionErrors(cluster)) ?? 0 >= before + 2
                })
            try await cluster.redis.cli("ACL", "SETUSER", "default", "+eval", "+evalsha")
            #expect(try await cluster.redis.cli("HLEN", "airavata:conn:user:carol") == "1")
            // Drop the node's command connection: the reconnect writes the node's true counts.
            try await cluster.redis.cli("CLIENT", "KILL", "TYPE", "normal")
            let cleared = await eventually(within: .seconds(10)) {
                (try? await cluster.redis.cli("HLEN", "airavata:conn:user:carol")) == "0"
            }
            #expect(cleared, "the stale count for carol outlived the reconnect")
        }
    }

    @Test("a count rewrite that Redis refuses after a reconnect keeps what is owed and is tried again")
    func refusedRewriteIsRetried() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--max-connections-per-user", "2"]) { cluster in
            var open = [
                try await cluster.connect(0, "/ws", user: "carol"), try await cluster.connect(0, "/ws", user: "carol"),
            ]
            // One release fails, as it would while Redis is away: it is owed.
            let before = try await Self.noPermissionErrors(cluster)
            try await cluster.redis.cli("ACL", "SETUSER", "default", "-eval", "-evalsha")
            open.removeLast().close()
            let owed = await eventually(within: .seconds(10)) {
                (try? await Self.noPermissionErrors(cluster)) ?? 0 >= before + 1
            }
            try #require(owed, "the release did not reach Redis and fail")

            // The reconnect's absolute rewrite is refused too, as on a replica after a failover (READONLY).
            let refusedBefore = try await Self.rejectedCalls(cluster, "hset")
            let normalClients = try await cluster.redis.cli("CLIENT", "LIST", "TYPE", "normal").split(
                whereSeparator: \.isNewline
            ).count
            try await cluster.redis.cli("ACL", "SETUSER", "default", "-hset", "-hdel")
            try await cluster.redis.cli("CLIENT", "KILL", "TYPE", "normal")
            let refused = await eventually(within: .seconds(10)) {
                (try? await Self.rejectedCalls(cluster, "hset")) ?? 0 > refusedBefore
            }
            try #require(refused, "the node's rewrite after the reconnect never reached Redis")
            // Each refused attempt is retried, and closes its connection rather than leave it open.
            let retried = await eventually(within: .seconds(10)) {
                (try? await Self.rejectedCalls(cluster, "hset")) ?? 0 > refusedBefore + 3
            }
            #expect(retried, "the refused rewrite was not retried")
            let clients = try await cluster.redis.cli("CLIENT", "LIST", "TYPE", "normal").split(
                whereSeparator: \.isNewline)
            #expect(
                clients.count <= normalClients,
                "\(clients.count) command connections after the retries, \(normalClients) before")
            try await cluster.redis.cli("ACL", "SETUSER", "default", "+eval", "+evalsha", "+hset", "+hdel")

            let settled = await eventually(within: .seconds(10)) {
                (try? await cluster.redis.cli("HVALS", "airavata:conn:user:carol")) == "1"
            }
            let count = try await cluster.redis.cli("HVALS", "airavata:conn:user:carol")
            #expect(
                settled, "carol holds one connection, but Redis counts '\(count)': the refused rewrite was forgotten")
            let second = try await Self.admitted(cluster, user: "carol")
            #expect(second != nil, "carol's second connection was refused: a stale count survived the refused rewrite")
            if let second { open.append(second) }
            defer { open.forEach { $0.close() } }
            #expect(try await Self.admitted(cluster, user: "carol") == nil, "the limit of 2 must still hold")
        }
    }

    @Test("a user keeps at most --max-sessions-per-user sessions; the oldest are evicted")
    func sessionsPerUser() async throws {
        try await ClusterHarness.with(
            nodes: 1, arguments: ["--max-sessions-per-user", "3", "--max-connections-per-user", "3"]
        ) { cluster in
            var ids: [String] = []
            for _ in 0..<5 {
                let token = try await cluster.token("dave")
                let socket = try await RawWebSocket.connect(port: cluster.node(0).port, path: "/ws?token=\(token)")
                let connected = try await socket.nextMessage()
                let id = try #require(connected["data"]?["sessionId"]?.stringValue)
                ids.append(id)
                let saved = try await cluster.redis.cli("ZSCORE", "airavata:sessions:user:dave", id)
                socket.close()
                // A close renews the session (its score is its expiry): wait for that before the
                // next save, or the renewal could land after it and make this one the newer.
                _ = await eventually {
                    (try? await cluster.redis.cli("ZSCORE", "airavata:sessions:user:dave", id)) != saved
                }
            }
            #expect(try await cluster.redis.cli("ZCARD", "airavata:sessions:user:dave") == "3")
            for (index, id) in ids.enumerated() {
                let exists = try await cluster.redis.cli("EXISTS", "airavata:session:\(id)")
                #expect(exists == (index < 2 ? "0" : "1"), "session \(index) of 5: EXISTS answered \(exists)")
            }
        }
    }

    @Test("a session Redis cannot save leaves its connection admitted and counted once")
    func unsavedSessionStillCounts() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--max-connections-per-user", "2"]) { cluster in
            // The user's session index is not a sorted set: the save, made with the admission
            // in one script, fails there (WRONGTYPE) after the count was taken.
            try await cluster.redis.cli("SET", "airavata:sessions:user:frank", "not a sorted set")
            let first = try await Self.admitted(cluster, user: "frank")
            #expect(first != nil, "a failed session save refused the connection")
            #expect(try await cluster.redis.cli("HVALS", "airavata:conn:user:frank") == "1")
            let second = try await Self.admitted(cluster, user: "frank")
            #expect(second != nil)
            defer { [first, second].forEach { $0?.close() } }
            #expect(try await Self.admitted(cluster, user: "frank") == nil, "the limit of 2 must still hold")
            #expect(try await cluster.redis.cli("HVALS", "airavata:conn:user:frank") == "2")
        }
    }

    @Test("a connection refused by a limit saves no session")
    func refusedConnectionSavesNoSession() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--max-connections-per-user", "1"]) { cluster in
            let first = try #require(try await Self.admitted(cluster, user: "grace"))
            defer { first.close() }
            let firstSession = try await cluster.redis.cli("ZRANGE", "airavata:sessions:user:grace", "0", "-1")
            #expect(firstSession.split(whereSeparator: \.isNewline).count == 1)
            for _ in 0..<3 {
                #expect(try await Self.admitted(cluster, user: "grace") == nil)
            }
            let sessions = try await cluster.redis.cli("ZRANGE", "airavata:sessions:user:grace", "0", "-1")
            #expect(sessions == firstSession, "refused connections saved sessions: \(sessions)")
            let keys = try await cluster.redis.cli("KEYS", "airavata:session:*")
            #expect(keys.split(whereSeparator: \.isNewline).count == 1, "session keys: \(keys)")
        }
    }

    @Test("a subscription that would push the session past its size bound is refused")
    func sessionSize() async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--max-subscriptions", "1000", "--rate-limit", "10000"]) {
            cluster in
            let token = try await cluster.token("erin")
            let socket = try await RawWebSocket.connect(port: cluster.node(0).port, path: "/ws?token=\(token)")
            defer { socket.close() }
            let connected = try await socket.nextMessage()
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            var refusal: JSONValue?
            for index in 0..<200 {
                let id = String(repeating: "x", count: 120) + "\(index)"
                try await socket.send(
                    .object([
                        "type": .string("system_status"),
                        "data": .object([
                            "action": .string("subscribe"), "resourceType": .string("experiment"),
                            "resourceId": .string(id),
                        ]),
                    ]))
                let reply = try await socket.nextMessage()
                if reply["type"]?.stringValue == "error" {
                    refusal = reply
                    break
                }
            }
            let refused = try #require(refusal, "200 subscriptions of 120-byte ids were all accepted")
            #expect(refused["error"]?.stringValue == SessionRecord.tooLargeMessage, "got \(refused.jsonString)")
            #expect(refused["data"]?["status"]?.stringValue == "error")
            let stored = Int(try await cluster.redis.cli("STRLEN", "airavata:session:\(session)")) ?? .max
            #expect(stored <= SessionRecord.maxEncodedBytes, "the stored session is \(stored) bytes")
        }
    }
}

@Suite("The joint admission's answer, as input")
struct AdmissionAnswerTests {
    @Test("a failed save's error is cut to its bound for the log; other answers carry none")
    func saveFailureIsBounded() {
        let long = "WRONGTYPE " + String(repeating: "x", count: 10_000)
        let cut = RedisConnectionLimiter.saveFailure(in: "ok-unsaved " + long)
        #expect(cut?.count == RedisConnectionLimiter.maxSaveFailureLength)
        #expect(cut.map { long.hasPrefix($0) } == true)
        #expect(RedisConnectionLimiter.saveFailure(in: "ok-unsaved WRONGTYPE no") == "WRONGTYPE no")
        for answer in ["ok", "user", "ok-unsaved", "OK-UNSAVED x", " ok-unsaved x"] {
            #expect(RedisConnectionLimiter.saveFailure(in: answer) == nil, "\(answer)")
        }
    }
}
