import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Testing

@Suite("Messages the server emits match the protocol's fields and types")
struct MessageFormatTests {
    static func expectSpecEnvelope(_ message: JSONValue, idPrefix: String) {
        let id = message["id"]?.stringValue ?? ""
        #expect(id.hasPrefix(idPrefix), "id \(id) should start with \(idPrefix)")
        #expect(Int64(id.dropFirst(idPrefix.count)) != nil, "id \(id) should end in a Unix timestamp")
        let timestamp = message["timestamp"]?.stringValue ?? ""
        #expect(Timestamp.isValidISO8601(timestamp) && timestamp.hasSuffix("Z"), "timestamp \(timestamp)")
    }

    @Test("event types", arguments: SpecReferences.events.map(\.type))
    func eventType(type: String) async throws {
        let reference = try #require(SpecReferences.events.first { $0.type == type })
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "root", roles: ["admin"])
            defer { socket.close() }
            for key in ["experiment:e-1", "task:t-1", "worker:w-1"] {
                let parts = key.split(separator: ":").map(String.init)
                _ = try await node.subscribe(socket, parts[0], parts[1])
            }
            try await node.publish(try JSONValue(parsing: #"{"type":"\#(type)","data":\#(reference.body)}"#))
            let message = try await socket.nextMessage()
            let expected = try SpecReferences.envelope(type: type, body: reference.body)
            #expect(message["type"]?.stringValue == type)
            #expect(shapeDifferences(withoutAdditions(message), expected) == [])
            #expect(message["data"] == expected["data"], "the producer's data must pass through unchanged")
            Self.expectSpecEnvelope(message, idPrefix: reference.idPrefix)
            #expect(message["cursor"]?.stringValue?.isEmpty == false)
        }
    }

    @Test("system events get system_ ids; notifications user_ ids")
    func systemAndUserIDs() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws/user", user: "alice")
            defer { socket.close() }
            try await node.publish(Events.system(note: "hello"))
            Self.expectSpecEnvelope(try await socket.nextMessage(), idPrefix: "system_")
            try await node.publish(Events.notification(user: "alice", title: "hi"))
            Self.expectSpecEnvelope(try await socket.nextMessage(), idPrefix: "user_alice_")
        }
    }

    @Test("ping, pong, error, statistics and subscription replies")
    func controlMessages() async throws {
        // A 1 s interval: the ping arrives soon, and a test process starved for a second by the
        // suites beside it is not taken for a dead client (at 0.5 s it was, now and then).
        try await TestGateway.with(server: HeartbeatTests.relaxed) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            let ping = try await socket.nextMessage(ofType: "ping")
            #expect(shapeDifferences(ping, try JSONValue(parsing: SpecReferences.ping)) == [])

            try await socket.send(.object(["type": .string("ping")]))
            let pong = try await socket.nextMessage(ofType: "pong")
            #expect(shapeDifferences(pong, try JSONValue(parsing: SpecReferences.pong)) == [])

            try await socket.send("{not json")
            let error = try await socket.nextMessage(ofType: "error")
            #expect(shapeDifferences(error, try JSONValue(parsing: SpecReferences.error)) == [])

            try await socket.send(.object(["type": .string("system_status")]))
            let status = try await socket.nextMessage(ofType: "system_status")
            #expect(
                shapeDifferences(withoutAdditions(status), try JSONValue(parsing: SpecReferences.systemStatus)) == [])

            let subscribed = try await node.subscribe(socket, "experiment", "e-1")
            #expect(shapeDifferences(subscribed, try JSONValue(parsing: SpecReferences.subscribed)) == [])
        }
    }

    @Test("invalid JSON and unknown types get errors; the connection stays open")
    func invalidInput() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            let cases: [(String, String)] = [
                ("{not json", "Invalid message format"),
                ("[1,2,3]", "Invalid message format"),
                (#"{"type":42}"#, "Invalid message format"),
                (String(repeating: "[", count: 10_000), "Invalid message format"),
                (#"{"type":"teleport"}"#, "Unknown message type"),
                (#"{"type":"experiment_updated","data":{}}"#, "Unknown message type"),
            ]
            for (input, expected) in cases {
                try await socket.send(input)
                let reply = try await socket.nextMessage()
                #expect(reply["type"]?.stringValue == "error")
                #expect(reply["error"]?.stringValue == expected, "input: \(input.prefix(40))")
            }
            try await socket.sendFrame(opcode: 0x2, payload: [0xFF, 0xFE, 0x00])
            let binary = try await socket.nextMessage()
            #expect(binary["error"]?.stringValue == "Invalid message format")
            try await socket.send(.object(["type": .string("ping")]))
            #expect(try await socket.nextMessage()["type"]?.stringValue == "pong")
        }
    }

    /// The statistics interval the broadcast test configures, in seconds.
    static let statsIntervalSeconds = 0.3
    static var statsInterval: Duration { .seconds(statsIntervalSeconds) }
    /// Broadcasts timed: enough gaps that one late wake-up cannot pass for the interval.
    static let statsGaps = 4
    /// Scheduling latitude over the gaps: the first broadcast may arrive late (the span
    /// shrinks by that much) and a busy machine delays each wake-up a little.
    static let statsEarlySlack: Duration = .milliseconds(250)
    static let statsLateSlack: Duration = .milliseconds(1500)

    @Test("a statistics broadcast arrives at the configured interval")
    func statisticsBroadcast() async throws {
        try await TestGateway.with(gateway: .init(nodeID: "n", statsIntervalSeconds: Self.statsIntervalSeconds)) {
            node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            let clock = ContinuousClock()
            var arrivals: [ContinuousClock.Instant] = []
            while arrivals.count <= Self.statsGaps {
                let status = try await socket.nextMessage(
                    ofType: "system_status", timeout: Self.statsInterval + Self.statsLateSlack)
                guard status["data"]?["activeConnections"] != nil else { continue }
                arrivals.append(clock.now)
                #expect(status["data"]?["activeConnections"]?.doubleValue == 1)
                #expect(status["data"]?["nodeId"]?.stringValue == "n")
            }
            let span = try #require(arrivals.last) - (try #require(arrivals.first))
            let nominal = Self.statsInterval * Self.statsGaps
            #expect(
                span >= nominal - Self.statsEarlySlack && span <= nominal + Self.statsLateSlack,
                "\(Self.statsGaps) gaps at \(Self.statsInterval) should span about \(nominal), took \(span)")
        }
    }
}
