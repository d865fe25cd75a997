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

    @Test("thresholds are kept sane: a streak of at least one send, a quiet spell no shorter than a close gap")
    func thresholdsClamp() {
        let clamped = StreamDetector.Thresholds(closeGapNanos: 10_000_000, streak: 0, quietNanos: 1)
        #expect(clamped.streak == 1 && clamped.quietNanos == 10_000_000)
    }

    #if os(Linux)
        @Test("auto: the socket of a connection streamed to runs Nagle's algorithm, and TCP_NODELAY again once quiet")
        func autoSwitchesTheSocket() async throws {
            var server = ServerConfiguration()
            server.tcpNoDelay = .auto
            server.streamThresholds = StreamDetector.Thresholds(
                closeGapNanos: 500_000_000, streak: 4, quietNanos: 500_000_000)
            try await TestGateway.with(server: server) { node in
                let socket = try await node.connect("/ws/user", user: "alice")
                defer { socket.close() }
                var sent = 0
                func deliverOne() async throws {
                    _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "n-\(sent)"))
                    let title = try await socket.nextMessage()["data"]?["title"]?.stringValue
                    #expect(title == "n-\(sent)", "events out of order")
                    sent += 1
                }
                /// Delivers until the socket's setting is `value`, within a bound.
                func deliverUntil(_ value: Int32) async throws {
                    let bound = sent + 50
                    while sent < bound, try Self.settings(node) != [value] { try await deliverOne() }
                }
                // Each event is read before the next is sent: one send each, normally a few
                // milliseconds apart. (A loaded machine may space two by more than 0.5 s,
                // which restarts the streak or ends the stream: the loops allow for that.)
                for _ in 0..<3 { try await deliverOne() }
                #expect(try Self.settings(node) == [1], "TCP_NODELAY before the fourth send")
                try await deliverUntil(0)
                #expect(try Self.settings(node) == [0], "a streak of four sends turns TCP_NODELAY off")
                #expect(try await Self.changes(node, "started") ?? 0 >= 1)
                for _ in 0..<20 { try await deliverOne() }
                try await deliverUntil(0)
                let stopped = try await Self.changes(node, "stopped") ?? 0
                #expect(try Self.settings(node) == [0])

                // The quiet spell is what is tested here, so it is waited out.
                try await Task.sleep(for: .seconds(1))
                try await deliverOne()
                #expect(try Self.settings(node) == [1], "TCP_NODELAY again at the first send after 0.5 s quiet")
                #expect(try await Self.changes(node, "stopped") == stopped + 1)
            }
        }

        @Test("true or false: the socket keeps its setting however fast it is written to", arguments: [true, false])
        func fixedSettingsStay(on: Bool) async throws {
            var server = ServerConfiguration()
            server.tcpNoDelay = on ? .on : .off
            server.streamThresholds = StreamDetector.Thresholds(
                closeGapNanos: 2_000_000_000, streak: 2, quietNanos: 2_000_000_000)
            try await TestGateway.with(server: server) { node in
                let socket = try await node.connect("/ws/user", user: "alice")
                defer { socket.close() }
                for index in 0..<10 {
                    _ = try await node.gateway.ingest(Events.notification(user: "alice", title: "n-\(index)"))
                    #expect(try await socket.nextMessage()["data"]?["title"]?.stringValue == "n-\(index)")
                }
                #expect(try Self.settings(node) == [on ? 1 : 0])
                #expect(try await Self.changes(node, "started") == 0)
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
