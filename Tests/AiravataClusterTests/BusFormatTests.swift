import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataRedis
import AiravataTestSupport
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@testable import AiravataCluster

/// The two forms of bus message (docs/architecture.md, "The bus message"): v2 carries a
/// routing header and the ready client message, v1 the whole event as JSON. Nodes read both
/// and write v1 while a node that reads only v1 is subscribed.
@Suite("Cluster: bus message formats", .serialized)
struct BusFormatTests {
    static func event(_ type: MessageType = .taskUpdated, routing: EventRouting? = nil) -> GatewayEvent {
        GatewayEvent(
            type: type,
            id: "ev-1",
            timestamp: "2026-12-05T08:00:00Z",
            data: .object(["task": .object(["id": .string("t-1"), "note": .string("caf\u{E9} \u{1F680}")])]),
            routing: routing
                ?? EventRouting(
                    category: type.category, experimentID: "exp-1", taskID: "t-1", projectID: "p-1",
                    ownerID: "owner \u{E9}"),
            acceptedAtMicros: 1_764_950_400_000_000
        )
    }

    // MARK: The encoding

    @Test("v2 carries routing, acceptance time and the client message; the frame is that message with its cursor")
    func v2RoundTrip() throws {
        let event = Self.event()
        let routed = try #require(EventWireFormat.decode(ByteBuffer(bytes: EventWireFormat.encodeV2(event))))
        #expect(routed.routing == event.routing)
        #expect(routed.acceptedAtMicros == event.acceptedAtMicros)
        let cursor = EventCursor(milliseconds: 1_764_950_400_000, sequence: 7)
        let message = routed.message(cursor: cursor)
        var expected = event.envelope(cursor: cursor)
        expected.cursor = cursor.description
        #expect(message == expected.encoded(), "\(String(decoding: message, as: UTF8.self))")
        // The same through v1, the form older nodes write.
        let legacy = try #require(EventWireFormat.decode(ByteBuffer(bytes: EventWireFormat.encodeV1(event))))
        #expect(legacy.routing == event.routing)
        #expect(legacy.message(cursor: cursor) == message)
        // Without routing ids (a system event) every field is empty.
        let system = Self.event(.systemStatus, routing: EventRouting(category: .system))
        let decoded = try #require(EventWireFormat.decode(ByteBuffer(bytes: EventWireFormat.encodeV2(system))))
        #expect(decoded.routing == system.routing)
    }

    @Test("a v2 body from Redis is held to the rules for client input")
    func v2Refusals() {
        let good = EventWireFormat.encodeV2(Self.event())
        let text = String(decoding: good, as: UTF8.self)
        let header = text.prefix { $0 != "\n" }
        let head = text.drop { $0 != "\n" }.dropFirst()
        func body(_ fields: [String], _ rest: String = String(head)) -> ByteBuffer {
            ByteBuffer(string: fields.joined(separator: "\t") + "\n" + rest)
        }
        let fields = header.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        #expect(fields.count == 9)
        func replacing(_ index: Int, _ value: String) -> [String] {
            var copy = fields
            copy[index] = value
            return copy
        }
        let refused: [(String, ByteBuffer)] = [
            ("unknown type", body(replacing(1, "task_exploded"))),
            ("time with a sign", body(replacing(2, "-1"))),
            ("time with a leading zero", body(replacing(2, "01"))),
            ("time past the year 3000", body(replacing(2, "99999999999999999"))),
            ("experiment id with a space", body(replacing(3, "has space"))),
            ("task id too long", body(replacing(4, String(repeating: "t", count: 129)))),
            ("user id with a control character", body(replacing(7, "bell\u{07}"))),
            (
                "project id not UTF-8",
                ByteBuffer(
                    bytes: Array("2\ttask_updated\t1\t\t\t\t".utf8) + [0xFF] + Array("\t\t\n".utf8) + Array(head.utf8))
            ),
            ("eight fields", body(Array(fields.dropLast()))),
            ("ten fields", body(fields + [""])),
            ("no line feed", ByteBuffer(string: String(header))),
            ("header too long", body(replacing(3, String(repeating: "e", count: 1_300)))),
            ("client message not an envelope", body(fields, #"["type"]"#)),
            ("client message not UTF-8", ByteBuffer(bytes: Array((String(header) + "\n" + head).utf8) + [0xC3, 0x28])),
            ("empty", ByteBuffer()),
            ("neither v1 nor v2", ByteBuffer(string: "3\tx")),
        ]
        #expect(EventWireFormat.decode(ByteBuffer(bytes: good)) != nil)
        for (what, bytes) in refused {
            #expect(EventWireFormat.decode(bytes) == nil, "accepted: \(what)")
        }
    }

    @Test("a v2 message's records are read back in order; any malformed record refuses the message")
    func records() throws {
        let bodies = ["2\tfirst", "", "2\tthird with a \n inside"]
        var message = ""
        for (index, body) in bodies.enumerated() { message += "1764950400000-\(index) \(body.utf8.count)\n\(body)" }
        let records = try #require(BusMessage.records(in: ByteBuffer(string: message)))
        #expect(records.map(\.0.description) == ["1764950400000-0", "1764950400000-1", "1764950400000-2"])
        #expect(records.map { String(buffer: $0.1) } == bodies)
        for bad in [
            "", "1-0 5\nabc", "1-0 3\nabc1-1", "x-0 1\na", "1-0 -1\n", "1-0 03\nabc", "1-0\nabc",
            "1-0 99999999999\n", "1-0 3abc",
        ] {
            #expect(BusMessage.records(in: ByteBuffer(string: bad)) == nil, "accepted \(bad.debugDescription)")
        }
    }

    @Test(
        "a v3 block's records get the cursors from its id on; a header, a body or an answer that does not fit is refused"
    )
    func blocks() throws {
        let bodies: [[UInt8]] = [Array("2\tfirst".utf8), [], Array("2\tthird with a \n inside".utf8)]
        let body = ByteBuffer(bytes: BusMessage.blockBody(bodies))
        #expect(String(buffer: body) == "7\n2\tfirst0\n23\n2\tthird with a \n inside")
        let first = EventCursor(milliseconds: 1_764_950_400_000, sequence: 5)
        let records = try #require(BusMessage.blockRecords(in: body, first: first, count: 3))
        #expect(records.map(\.0.description) == ["1764950400000-5", "1764950400000-6", "1764950400000-7"])
        #expect(records.map { Array($0.1.readableBytesView) } == bodies)
        // The count must match, and the cursors cannot run past the sequence's range.
        for count in [0, 1, 2, 4, BusMessage.maxBlockEvents + 1] {
            #expect(BusMessage.blockRecords(in: body, first: first, count: count) == nil, "count \(count)")
        }
        let nearEnd = EventCursor(milliseconds: 9, sequence: .max - 1)
        #expect(BusMessage.blockRecords(in: body, first: nearEnd, count: 3) == nil)
        for bad in ["", "5\nabc", "3\nabc1", "x\na", "-1\n", "03\nabc", "3abc", "99999999999\n", "3\nabc\n"] {
            #expect(
                BusMessage.blockRecords(in: ByteBuffer(string: bad), first: first, count: 1) == nil,
                "accepted \(bad.debugDescription)")
        }

        let header = try #require(BusMessage.blockHeader(ByteBuffer(string: "1764950400000-5 3 30")))
        #expect(header == BusMessage.BlockHeader(first: first, count: 3, bytes: 30))
        for bad in [
            "", "1764950400000-5 3", "1764950400000-5 3 30 ", "1764950400000-18446744073709551614 3 30",
            "1764950400000-5 0 30", "1764950400000-5 03 30", "x-5 3 30", "1764950400000-5  3 30",
            "1764950400000-5 3 -30", "1764950400000-5 100001 30", "1764950400000-5 3 1234567890",
        ] {
            #expect(BusMessage.blockHeader(ByteBuffer(string: bad)) == nil, "accepted \(bad.debugDescription)")
        }

        let answer = RedisReply.bulk(ByteBuffer(string: "1764950400000-5"))
        #expect(
            ReplayLogEntry.blockCursors(answer, count: 3) == ["1764950400000-5", "1764950400000-6", "1764950400000-7"])
        #expect(ReplayLogEntry.blockCursors(answer, count: 0) == nil)
        let atEnd = RedisReply.bulk(ByteBuffer(string: "1764950400000-18446744073709551615"))
        #expect(ReplayLogEntry.blockCursors(atEnd, count: 2) == nil)
        #expect(ReplayLogEntry.blockCursors(.array([answer]), count: 1) == nil)
        #expect(ReplayLogEntry.blockCursors(.bulk(ByteBuffer(string: "7")), count: 1) == nil)
    }

    // MARK: Mixed clusters

    /// Records what is published on the channels it subscribes to: with only the v1 channel
    /// it stands in for a node of an older release.
    final class Listener: Sendable {
        final class Messages: Sendable {
            private let list = Mutex<[(channel: String, payload: String)]>([])
            func append(_ channel: String, _ payload: String) { list.withLock { $0.append((channel, payload)) } }
            var all: [(channel: String, payload: String)] { list.withLock { $0 } }
        }
        let messages = Messages()
        private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

        init(redis: RedisServerProcess, channels: [String]) throws {
            var logger = Logger(label: "test.bus-listener")
            logger.logLevel = .critical
            let messages = self.messages
            let subscriber = RedisSubscriber(
                configuration: try RedisConfiguration(url: redis.url), logger: logger,
                onMessage: { channel, payload in messages.append(channel, String(buffer: payload)) },
                onResubscribed: {})
            for channel in channels { subscriber.subscribe(channel) }
            task.withLock { $0 = Task { await subscriber.run() } }
        }

        /// The channels on which the messages carrying `notice` were published.
        func channels(carrying notice: String) -> [String] {
            messages.all.filter { $0.payload.contains("\"\(notice)\"") }.map(\.channel)
        }

        func leave() {
            task.withLock { $0?.cancel() }
        }
    }

    static let v1 = "airavata:events"
    static let v2 = "airavata:events:v2"
    static let v3 = "airavata:events:v3"

    /// Publishes one system event to `node` and waits until every listener got it.
    static func deliverEverywhere(
        _ cluster: ClusterHarness, from node: Int, _ notice: String, to listeners: [RawWebSocket]
    ) async throws {
        try await cluster.publish(node, ClusterEvents.system(notice))
        for (index, listener) in listeners.enumerated() {
            let message = try await listener.nextMessage(ofType: "system_status")
            #expect(
                message["data"]?["notice"]?.stringValue == notice,
                "listener \(index) expected \(notice), got \(message.jsonString)")
        }
    }

    @Test(
        "with an older node subscribed, nodes write the newest form it reads until it leaves, then v3; no event is lost"
    )
    func automaticFormat() async throws {
        try await ClusterHarness.with(nodes: 2) { cluster in
            let listeners = [
                try await cluster.connect(0, "/ws", user: "a"), try await cluster.connect(1, "/ws", user: "b"),
            ]
            defer { listeners.forEach { $0.close() } }
            let watcher = try Listener(redis: cluster.redis, channels: [Self.v1, Self.v2, Self.v3])
            defer { watcher.leave() }
            var sequence = 0
            /// Publishes from each node until both write on `channel` (seen by the watcher).
            func untilBothWrite(on channel: String) async -> Bool {
                await eventually(within: .seconds(15)) {
                    var both = true
                    for node in 0..<2 {
                        sequence += 1
                        let notice = "probe-\(sequence)"
                        try? await Self.deliverEverywhere(cluster, from: node, notice, to: listeners)
                        // Published before the clients got it, so the watcher has it by now or soon.
                        let seen = await eventually { !watcher.channels(carrying: notice).isEmpty }
                        both = both && seen && watcher.channels(carrying: notice) == [channel]
                    }
                    return both
                }
            }
            #expect(await untilBothWrite(on: Self.v3), "a cluster of new nodes did not settle on v3")

            let beforeV3 = try Listener(redis: cluster.redis, channels: [Self.v1, Self.v2])
            defer { beforeV3.leave() }
            #expect(await untilBothWrite(on: Self.v2), "the nodes never wrote v2 for the node of a release before v3")

            let older = try Listener(redis: cluster.redis, channels: [Self.v1])
            defer { older.leave() }
            #expect(await untilBothWrite(on: Self.v1), "the nodes never wrote v1 for the older node")
            // From now on the older node reads every event, from either node, as v1.
            for round in 0..<4 {
                try await Self.deliverEverywhere(cluster, from: round % 2, "mixed-\(round)", to: listeners)
            }
            #expect(
                await eventually {
                    older.messages.all.filter { $0.payload.contains("mixed-") }.count == 4
                })
            let legacy = older.messages.all.map(\.payload).filter { $0.contains("mixed-") }
            #expect(legacy.count == 4, "the older node got \(legacy.count) of 4 events")
            for (round, message) in legacy.enumerated() {
                let body = Array(message.utf8.drop { $0 != UInt8(ascii: "\n") }.dropFirst())
                let event = EventWireFormat.decodeV1(body)
                #expect(event?.data["notice"]?.stringValue == "mixed-\(round)", "not v1: \(message)")
            }

            older.leave()
            #expect(await untilBothWrite(on: Self.v2), "the nodes did not return to v2 after the older node left")
            beforeV3.leave()
            #expect(await untilBothWrite(on: Self.v3), "the nodes did not return to v3 after the last older node left")
        }
    }

    @Test(
        "a newer form waits until the counts have shown it for a while: an older node uncounted for a moment (a Redis failover's resubscriptions) still gets the form it reads"
    )
    func raiseWaits() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            let listener = try await cluster.connect(0, "/ws", user: "a")
            defer { listener.close() }
            let watcher = try Listener(redis: cluster.redis, channels: [Self.v1, Self.v2, Self.v3])
            defer { watcher.leave() }
            var sequence = 0
            /// Publishes one notice and returns the channels the watcher saw it on.
            func publishedOn() async throws -> [String] {
                sequence += 1
                let notice = "probe-\(sequence)"
                try await Self.deliverEverywhere(cluster, from: 0, notice, to: [listener])
                _ = await eventually { !watcher.channels(carrying: notice).isEmpty }
                return watcher.channels(carrying: notice)
            }
            let older = try Listener(redis: cluster.redis, channels: [Self.v1, Self.v2])
            #expect(
                await eventually(within: .seconds(15)) { (try? await publishedOn()) == [Self.v2] },
                "the node never wrote v2 for the node of a release before v3")

            // The older node is away for two seconds, as while nodes resubscribe after a
            // failover; the counts say "every node reads v3" all that time.
            older.leave()
            let clock = ContinuousClock()
            let away = clock.now + .seconds(2)
            var channels: [[String]] = []
            while clock.now < away {
                channels.append(try await publishedOn())
                try await clock.sleep(for: .milliseconds(100))
            }
            #expect(
                !channels.isEmpty && channels.allSatisfy { $0 == [Self.v2] },
                "written while the older node was uncounted for 2 s: \(channels)")
            // It stays away: the node moves to v3 once the counts have held long enough.
            #expect(
                await eventually(within: .seconds(15)) { (try? await publishedOn()) == [Self.v3] },
                "the node never returned to v3")
        }
    }

    /// One node pinned to `format` and a client that got one event: `forge` publishes bad
    /// messages on the node's channel (given that event's cursor); then two real events must
    /// still reach the client, in order, and the node stay ready.
    static func survivesForgeries(
        format: String, _ forge: (ClusterHarness, _ next: (UInt64) -> String) async throws -> Void
    ) async throws {
        try await ClusterHarness.with(nodes: 1, arguments: ["--bus-format", format]) { cluster in
            let listener = try await cluster.connect(0, "/ws", user: "u")
            defer { listener.close() }
            try await cluster.publish(0, ClusterEvents.system("first"))
            let first = try await listener.nextMessage(ofType: "system_status")
            let cursor = try #require(first["cursor"]?.stringValue.flatMap { EventCursor($0) })
            try await forge(cluster) { step in "\(cursor.milliseconds)-\(cursor.sequence + step)" }
            for notice in ["second", "third"] {
                try await cluster.publish(0, ClusterEvents.system(notice))
                let message = try await listener.nextMessage(ofType: "system_status")
                #expect(message["data"]?["notice"]?.stringValue == notice, "got \(message.jsonString)")
            }
            #expect(await cluster.readiness(0) == 200)
        }
    }

    /// A forged event's v2 body: the routing header and the client message.
    static let forgedBody =
        "2\tsystem_status\t1\t\t\t\t\t\t\n"
        + #"{"type":"system_status","id":"forged","timestamp":"2024-01-01T00:00:00Z","data":{"notice":"forged"}"#

    @Test("bad messages on the v2 channel neither crash nor wedge the node, and are not delivered")
    func hostileV2Messages() async throws {
        try await Self.survivesForgeries(format: "v2") { cluster, next in
            let header = "2\tsystem_status\t1\t\t\t\t\t\t"
            let envelope = String(Self.forgedBody.drop { $0 != "{" })
            func record(_ cursor: String, _ body: String) -> String { "\(cursor) \(body.utf8.count)\n\(body)" }
            for payload in [
                "",
                "no records here",
                record(next(1), "2\tnot enough fields\n" + envelope),
                record(next(2), header + "\n" + #"["not an envelope"]"#),
                record(next(3), "2\tsystem_status\t1\thas space\t\t\t\t\t\n" + envelope),
                // A length beyond the message, and one that overflows: the rest cannot be trusted.
                "\(next(4)) 999999\n" + Self.forgedBody,
                "\(next(5)) 99999999999999999999\n",
                // A cursor far beyond the log is checked against it before it may move the node.
                record("99999999999999-0", Self.forgedBody),
                record("not-a-cursor", Self.forgedBody),
            ] {
                try await cluster.redis.cli("PUBLISH", Self.v2, payload)
            }
            // Not UTF-8 inside the client message: a browser would drop the connection over it.
            try await cluster.redis.cli(
                "EVAL", "redis.call('PUBLISH', KEYS[1], ARGV[1] .. string.char(255) .. '}')", "1", Self.v2,
                "\(next(6)) \(Self.forgedBody.utf8.count + 2)\n" + Self.forgedBody)
        }
    }

    @Test("bad messages on the v3 channel neither crash nor wedge the node, and are not delivered")
    func hostileV3Messages() async throws {
        try await Self.survivesForgeries(format: "v3") { cluster, next in
            let body = "\(Self.forgedBody.utf8.count)\n" + Self.forgedBody
            let bodyBytes = body.utf8.count
            let farEnd = next(0).prefix { $0 != "-" } + "-18446744073709551615"
            for payload in [
                // A body with no header before it.
                body,
                "not a header",
                // Headers whose body does not match them: length, count, cursors past the end.
                "\(next(1)) 1 \(bodyBytes + 1)", body,
                "\(next(2)) 2 \(bodyBytes)", body,
                "\(farEnd) 2 \(bodyBytes * 2)", body + body,
                // A body that is not records.
                "\(next(3)) 1 5", "abc\nd",
                // A well-formed block far beyond the log: checked against it before it may move the node.
                "99999999999999-0 1 \(bodyBytes)", body,
                // A header whose body never comes: the next real block must still be delivered.
                "\(next(4)) 1 \(bodyBytes)",
            ] {
                try await cluster.redis.cli("PUBLISH", Self.v3, payload)
            }
        }
    }

    @Test("nodes pinned to v1, v2 and v3 exchange every event, in order, with cursors that never repeat")
    func pinnedFormats() async throws {
        let formats = [["--bus-format", "v1"], ["--bus-format", "v2"], ["--bus-format", "v3"]]
        try await ClusterHarness.with(nodes: 3, perNode: formats) { cluster in
            let listeners = [
                try await cluster.connect(0, "/ws", user: "a"), try await cluster.connect(1, "/ws", user: "b"),
                try await cluster.connect(2, "/ws", user: "c"),
            ]
            defer { listeners.forEach { $0.close() } }
            var cursors: [[EventCursor]] = [[], [], []]
            // Each v3 block follows an entry that v1 or v2 appended, which its script must see.
            for round in 0..<21 {
                let notice = "pinned-\(round)"
                let events: JSONValue =
                    round % 3 == 2
                    ? .array((0..<3).map { ClusterEvents.system(notice + (($0 == 0) ? "" : "-\($0)")) })
                    : ClusterEvents.system(notice)
                try await cluster.publish(round % 3, events)
                for (index, listener) in listeners.enumerated() {
                    for part in 0..<(round % 3 == 2 ? 3 : 1) {
                        let message = try await listener.nextMessage(ofType: "system_status")
                        let expected = notice + (part == 0 ? "" : "-\(part)")
                        #expect(message["data"]?["notice"]?.stringValue == expected, "\(message.jsonString)")
                        if let cursor = message["cursor"]?.stringValue.flatMap({ EventCursor($0) }) {
                            cursors[index].append(cursor)
                        }
                    }
                }
            }
            #expect(cursors[0] == cursors[1] && cursors[1] == cursors[2])
            for list in cursors {
                #expect(list.count == 35)
                #expect(list == list.sorted() && Set(list).count == list.count)
            }
        }
    }

    @Test("concurrent producers share script calls: each request whole, every event delivered once")
    func groupCommit() async throws {
        try await ClusterHarness.with(nodes: 1) { cluster in
            let listener = try await cluster.connect(0, "/ws", user: "a")
            defer { listener.close() }
            let requests = 120
            let perRequest = 3
            let service = try await cluster.token("producer", roles: ["service"])
            let answers = try await withThrowingTaskGroup(of: [String].self) { group in
                for request in 0..<requests {
                    group.addTask {
                        let batch = JSONValue.array(
                            (0..<perRequest).map { ClusterEvents.system("r\(request)-e\($0)") })
                        let response = try await cluster.http(0).publish(json: batch.jsonString, token: service)
                        guard response.status == 202 else { throw TestSupportError("status \(response.status)") }
                        let body = try JSONValue(parsing: response.bodyString)
                        return body["cursors"]?.arrayValue?.compactMap(\.stringValue) ?? []
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Each request's events are consecutive in the log: nothing of another request between.
            let all = answers.flatMap { $0 }.compactMap { EventCursor($0) }.sorted()
            #expect(all.count == requests * perRequest)
            for cursors in answers {
                let parsed = cursors.compactMap { EventCursor($0) }
                let start = try #require(all.firstIndex(of: parsed[0]))
                #expect(Array(all[start..<(start + perRequest)]) == parsed)
            }
            var received: [String: Int] = [:]
            var last: EventCursor?
            for _ in 0..<(requests * perRequest) {
                let message = try await listener.nextMessage(ofType: "system_status")
                received[message["data"]?["notice"]?.stringValue ?? "?", default: 0] += 1
                let cursor = message["cursor"]?.stringValue.flatMap { EventCursor($0) }
                if let last, let cursor { #expect(cursor > last) }
                last = cursor
            }
            #expect(received.count == requests * perRequest && received.values.allSatisfy { $0 == 1 })
            let stats = try await cluster.redis.cli("INFO", "commandstats")
            let calls =
                stats.split(whereSeparator: \.isNewline)
                .first { $0.hasPrefix("cmdstat_evalsha:") }
                .flatMap { $0.split(separator: "=")[1].split(separator: ",").first }.flatMap { Int($0) } ?? 0
            // Admission and session scripts run by digest too: count only what publishing could add.
            #expect(calls < requests, "\(calls) script calls for \(requests) concurrent requests: nothing was grouped")
        }
    }
}
