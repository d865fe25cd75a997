import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Foundation
import Testing

/// `--tcp-nodelay auto`: a connection's socket keeps `TCP_NODELAY` until the connection is
/// streamed to, then runs Nagle's algorithm until it goes quiet (`StreamDetector`).
@Suite("Streamed connections")
struct StreamedConnectionTests {
    static let thresholds = StreamDetector.Thresholds(
        closeGapNanos: 20_000_000, streak: 4, quietNanos: 500_000_000)

    /// Feeds sends at the given offsets (ms) and returns the changes that were not `.none`,
    /// with the index of the send that made each.
    static func changes(_ offsetsMillis: [UInt64], _ thresholds: StreamDetector.Thresholds = thresholds)
        -> [(Int, StreamDetector.Change)]
    {
        var detector = StreamDetector()
        var changes: [(Int, StreamDetector.Change)] = []
        for (index, millis) in offsetsMillis.enumerated() {
            let change = detector.send(at: 1_000_000_000 + millis * 1_000_000, thresholds)
            if change != .none { changes.append((index, change)) }
        }
        return changes
    }

    @Test("a streak of close sends starts streaming at its last send; fewer do not")
    func streakStarts() {
        // 4 sends 5 ms apart: the fourth switches.
        let four = Self.changes([0, 5, 10, 15])
        #expect(four.map(\.0) == [3] && four.map(\.1) == [.startStreaming])
        // 3 sends, then a gap of 20 ms (not close), then 3 more: no streak of 4.
        #expect(Self.changes([0, 5, 10, 30, 35, 40]).isEmpty)
        // A gap just under the bound counts.
        #expect(Self.changes([0, 19, 38, 57]).map(\.1) == [.startStreaming])
    }

    @Test("an interactive connection, an event now and then, never streams")
    func sparseNeverStreams() {
        // One send every 100 ms for a minute, and bursts of 3 every second.
        #expect(Self.changes((0..<600).map { UInt64($0) * 100 }).isEmpty)
        let bursts = (0..<60).flatMap { second in [0, 2, 4].map { UInt64(second) * 1_000 + $0 } }
        #expect(Self.changes(bursts).isEmpty)
    }

    @Test("streaming stops at the first send after a quiet spell, and can start again")
    func quietStops() {
        let stream = (0..<10).map { UInt64($0) * 5 }  // streams at index 3
        let changes = Self.changes(stream + [45 + 499, 45 + 499 + 500, 1_100, 1_105, 1_110, 1_115])
        #expect(changes.map(\.0) == [3, 11, 15])
        #expect(changes.map(\.1) == [.startStreaming, .stopStreaming, .startStreaming])
    }

    @Test("a client that speaks ends the stream at once, and no streak starts until it has been quiet")
    func clientSpeaks() {
        var detector = StreamDetector()
        let ms: UInt64 = 1_000_000
        var changes: [StreamDetector.Change] = []
        for index in 0..<4 { changes.append(detector.send(at: UInt64(index) * 5 * ms, Self.thresholds)) }
        #expect(changes.last == .startStreaming)
        #expect(detector.heard(at: 16 * ms) == .stopStreaming)
        #expect(detector.heard(at: 17 * ms) == .none, "already interactive")
        // Sends 5 ms apart: the streak is there by 35 ms, but the client spoke at 17 ms.
        var started: UInt64?
        for index in 4..<200 where started == nil {
            if detector.send(at: UInt64(index) * 5 * ms, Self.thresholds) == .startStreaming {
                started = UInt64(index) * 5 * ms
            }
        }
        #expect(started == 520 * ms, "the first send 0.5 s after the client spoke")

        // Seeded with the connect: no stream in the first 0.5 s.
        var fresh = StreamDetector(heardNanos: 0)
        #expect((1..<100).allSatisfy { fresh.send(at: UInt64($0) * ms, Self.thresholds) == .none })
    }

    @Test("thresholds are kept sane: a streak of at least one send, a quiet spell no shorter than a close gap")
    func thresholdsClamp() {
        let clamped = StreamDetector.Thresholds(closeGapNanos: 10_000_000, streak: 0, quietNanos: 1)
        #expect(clamped.streak == 1 && clamped.quietNanos == 10_000_000)
    }

    @Test("the documented defaults: 8 sends each under 20 ms apart, 0.5 s quiet")
    func defaults() {
        let thresholds = StreamDetector.Thresholds()
        #expect(
            thresholds.closeGapNanos == 20_000_000 && thresholds.streak == 8 && thresholds.quietNanos == 500_000_000)
        #expect(ServerConfiguration().tcpNoDelay == .auto)
        // From the 8th send in a row, not before.
        #expect(Self.changes((0..<20).map { UInt64($0) * 10 }, thresholds).map(\.0) == [7])
    }

    #if os(Linux)
        /// Thresholds for the tests on a real socket: any two sends count as close, and
        /// quiet is 2 s, far longer than any step here takes on a loaded machine.
        static let socketThresholds = StreamDetector.Thresholds(
            closeGapNanos: 2_000_000_000, streak: 4, quietNanos: 2_000_000_000)
        static let quiet = Duration.seconds(2)

        @Test(
            "auto: the socket of a connection streamed to runs Nagle's algorithm; TCP_NODELAY again when the client speaks, and once quiet"
        )
        func autoSwitchesTheSocket() async throws {
            var server = ServerConfiguration()
            server.tcpNoDelay = .auto
            server.streamThresholds = Self.socketThresholds
            try await TestGateway.with(server: server) { node in
                let connected = ContinuousClock.now
                let socket = try await node.connect("/ws/user", user: "alice")
                defer { socket.close() }
                var sent = 0
                func deliverOne() async throws {
                    _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "n-\(sent)"))
                    let title = try await socket.nextMessage()["data"]?["title"]?.stringValue
                    #expect(title == "n-\(sent)", "events out of order")
                    sent += 1
                }
                // The client spoke at connect (its ping): no stream until it has been quiet.
                // (On a machine so loaded that these take 2 s, the stream may start here; the
                // quiet spell below then ends it at its first send, and it starts again.)
                for _ in 0..<6 { try await deliverOne() }
                if ContinuousClock.now - connected < Self.quiet {
                    #expect(try Self.settings(node) == [1], "TCP_NODELAY while the client has just spoken")
                }
                // The quiet spell is what is tested here, so it is waited out.
                try await Task.sleep(for: Self.quiet + .milliseconds(200))
                let started = try await Self.changes(node, "started") ?? 0
                for _ in 0..<4 { try await deliverOne() }
                #expect(try Self.settings(node) == [0], "a streak of sends to a quiet client turns TCP_NODELAY off")
                #expect(try await Self.changes(node, "started") == started + 1)

                // A pong answers our heartbeat: it is not the client talking. (No answer comes
                // to a pong, so there is nothing to wait for but time.)
                try await socket.sendFrame(opcode: 0xA, payload: Array("beat".utf8))
                try await Task.sleep(for: .milliseconds(200))
                #expect(try Self.settings(node) == [0], "a pong ended the stream")

                // The client speaks: TCP_NODELAY at once, before the answer leaves.
                let stopped = try await Self.changes(node, "stopped") ?? 0
                try await socket.send(.object(["type": .string("ping"), "id": .string("mid-stream")]))
                _ = try await socket.nextMessage(ofType: "pong")
                #expect(try Self.settings(node) == [1], "TCP_NODELAY again when the client speaks")
                #expect(try await Self.changes(node, "stopped") == stopped + 1)
                // (Had 2 s passed since the last send, the pong's own send would have ended the
                // stream too: the checks above hold either way, and prove the client rule when
                // the machine is not that slow.)

                // Streamed to again once the client is quiet; then quiet itself ends it.
                try await Task.sleep(for: Self.quiet + .milliseconds(200))
                for _ in 0..<4 { try await deliverOne() }
                #expect(try Self.settings(node) == [0])
                try await Task.sleep(for: Self.quiet + .milliseconds(200))
                try await deliverOne()
                #expect(try Self.settings(node) == [1], "TCP_NODELAY again at the first send after a quiet spell")
                #expect(try await Self.changes(node, "stopped") == stopped + 2)
            }
        }

        /// `true`, `false`, and `auto` without direct writes (which then acts as `true`: no
        /// socket writer, so nothing to switch); `auto` with them, the same steps, switches.
        @Test(
            "true, false, and auto without direct writes keep the socket's setting; auto with them, the same steps, switches",
            arguments: [(TCPNoDelay.on, true, 1), (.off, true, 0), (.auto, false, 1), (.auto, true, 0)]
                as [(TCPNoDelay, Bool, Int32)])
        func fixedSettingsStay(setting: TCPNoDelay, directWrites: Bool, expected: Int32) async throws {
            var server = ServerConfiguration()
            server.tcpNoDelay = setting
            server.directWrites = directWrites
            server.streamThresholds = Self.socketThresholds
            try await TestGateway.with(server: server) { node in
                let socket = try await node.connect("/ws/user", user: "alice")
                defer { socket.close() }
                // Past the quiet spell after the connect: with auto, the sends below would stream.
                try await Task.sleep(for: Self.quiet + .milliseconds(200))
                for index in 0..<10 {
                    _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "n-\(index)"))
                    #expect(try await socket.nextMessage()["data"]?["title"]?.stringValue == "n-\(index)")
                }
                #expect(try Self.settings(node) == [expected])
                let switches = setting == .auto && directWrites ? 1 : 0
                #expect(try await Self.changes(node, "started") == switches)
            }
        }

        /// `TCP_NODELAY` of the node's client sockets (this process's own).
        static func settings(_ node: TestGateway) throws -> [Int32] {
            try noDelaySettingsOfAcceptedSockets(pid: getpid(), port: node.port)
        }

        static func changes(_ node: TestGateway, _ change: String) async throws -> Int? {
            try await DirectWritesTests.metric(node, "airavata_streamed_connections_total{change=\"\(change)\"}")
        }
    #endif
}
