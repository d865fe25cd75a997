import AiravataClient
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Synchronization
import Testing

/// Redis failover and partition under load, on real processes: a primary, a replica and
/// three Sentinels (or a standalone Redis behind a severable link), three gateway nodes,
/// official Swift clients that resume by themselves, and a producer at a steady rate.
/// The contract checked: every client receives every event that was answered 202, or is
/// told `recovery_failed`; none twice; and delivery works afterwards.
@Suite("Cluster: Redis failover and partition under load", .serialized)
struct FailoverTests {
    static let experiment = "exp-failover"
    static let project = "proj-failover"
    /// Clients per node; 30 in all keeps the test within a CI budget on two cores.
    static let clientsPerNode = 10
    /// Events per second from the producer, over `lanes` lanes.
    static let rate = 200
    static let lanes = 4
    /// How long the producer runs.
    static let streamDuration: Duration = .seconds(15)
    /// The event that closes every test: its arrival everywhere proves delivery works again.
    static let finalSequence = 9_999_999
    /// Sequences from here up are one-off events posted to one node after recovery.
    static let probe = 9_000_000
    /// `--redis-outage-grace` of every node: short, so readiness shows a failover.
    static let outageGrace = "1"

    /// `perNode` clients of project members on each of `homes`, each with the other nodes as
    /// fallbacks in order.
    static func clients(
        _ fleet: GatewayFleet,
        perNode: Int,
        homes: [Int]
    ) async throws -> (clients: [GatewayClient], recorders: [SwiftClientTests.Recorder]) {
        var clients: [GatewayClient] = []
        var recorders: [SwiftClientTests.Recorder] = []
        for home in homes {
            for _ in 0..<perNode {
                // A user each: one user's connections are limited per cluster.
                let token = try await fleet.token("member-\(clients.count)", projects: [project])
                let order = (0..<fleet.count).map { (home + $0) % fleet.count }
                var configuration = GatewayClient.Configuration(
                    host: "127.0.0.1", port: 1, path: "/ws/experiments/\(experiment)"
                ) { token }
                configuration.endpoints = order.map { ("127.0.0.1", fleet.node($0).port) }
                configuration.initialBackoff = .milliseconds(100)
                configuration.maximumBackoff = .seconds(1)
                let recorder = SwiftClientTests.Recorder()
                let client = GatewayClient(configuration: configuration) { recorder.record($0) }
                client.start()
                clients.append(client)
                recorders.append(recorder)
            }
        }
        let connected = await eventually(within: .seconds(20)) { recorders.allSatisfy { !$0.connections.isEmpty } }
        guard connected else {
            let count = recorders.count { !$0.connections.isEmpty }
            throw TestSupportError("only \(count) of \(recorders.count) clients connected within 20 s")
        }
        return (clients, recorders)
    }

    /// Creates the experiment (so its ownership is known) through node `node`, retrying while
    /// the node answers 503.
    static func post(
        _ fleet: GatewayFleet, node: Int, _ event: JSONValue, within timeout: Duration = .seconds(20)
    ) async throws {
        let token = try await fleet.token("producer", roles: ["service"])
        var last = 0
        let accepted = await eventually(within: timeout) {
            last = await PacedProducer.post(fleet, node, event, token)
            return last == 202
        }
        guard accepted else {
            throw TestSupportError(
                "posting to node \(node) was still answered \(last) after \(timeout), expected 202; \(fleet.logTail(node))"
            )
        }
    }

    /// Posts the final event and waits until every client has it.
    static func finish(
        _ fleet: GatewayFleet, node: Int, recorders: [SwiftClientTests.Recorder]
    ) async throws {
        try await post(fleet, node: node, ClusterEvents.progress(experiment: experiment, sequence: finalSequence))
        let everywhere = await eventually(within: .seconds(30)) {
            recorders.allSatisfy { $0.sequence.contains(finalSequence) }
        }
        let missing = recorders.indices.filter { !recorders[$0].sequence.contains(finalSequence) }
        #expect(everywhere, "every client should get the event posted after recovery; these did not: \(missing)")
    }

    static func expectContract(
        _ recorders: [SwiftClientTests.Recorder], producer: PacedProducer, context: @autoclosure () -> String
    ) -> DeliveryVerdict {
        let verdict = DeliveryVerdict(
            clients: recorders, acknowledged: producer.acknowledged, lanes: lanes, final: finalSequence)
        #expect(
            verdict.silentLosses.isEmpty,
            "acknowledged events missing without recovery_failed: \(verdict.silentLosses.prefix(5)); \(context())")
        #expect(verdict.duplicates.isEmpty, "events delivered twice: \(verdict.duplicates.prefix(5))")
        #expect(verdict.disorder.isEmpty, "a lane's events out of order: \(verdict.disorder.prefix(5))")
        return verdict
    }

    /// The highest sequence among the log's last entries (lanes interleave, so not just the
    /// last one).
    static func newestSequenceInLog(of redis: RedisDaemon) async throws -> Int {
        let output = try await redis.cli("--no-raw", "XREVRANGE", "airavata:events", "+", "-", "COUNT", "50")
        let pattern = /completedTasks\\?":(\d+)/
        return output.matches(of: pattern).compactMap { Int($0.output.1) }.max() ?? -1
    }

    /// The sequences of `experiment_progress` events a Redis stream holds.
    static func sequencesInLog(of redis: RedisDaemon) async throws -> Set<Int> {
        let output = try await redis.cli("--no-raw", "XRANGE", "airavata:events", "-", "+")
        let pattern = /completedTasks\\?":(\d+)/
        return Set(output.matches(of: pattern).compactMap { Int($0.output.1) })
    }

    @Test("the primary is killed mid-stream and Sentinel promotes a caught-up replica: nothing is lost")
    func caughtUpReplica() async throws {
        let redis = try await SentinelCluster.start()
        defer { redis.stop() }
        let fleet = try await GatewayFleet()
        defer { fleet.stop() }
        for index in 1...3 {
            try await fleet.launch(
                name: "n\(index)",
                redisArguments: [
                    "--redis-sentinels", redis.sentinelAddresses, "--redis-sentinel-master", SentinelCluster.master,
                ],
                extraArguments: ["--redis-outage-grace", Self.outageGrace])
        }
        try await Self.post(
            fleet, node: 0, ClusterEvents.experiment(id: Self.experiment, project: Self.project, owner: "alice"))
        let (clients, recorders) = try await Self.clients(fleet, perNode: Self.clientsPerNode, homes: [0, 1, 2])
        let producer = PacedProducer(lanes: [0, 1, 2, 0], experiment: Self.experiment)
        let watch = ReadinessWatch()
        let clock = ContinuousClock()
        let killedAt = Mutex<ContinuousClock.Instant?>(nil)
        let promotedAt = Mutex<ContinuousClock.Instant?>(nil)

        async let watching: Void = watch.run(fleet, nodes: [0, 1, 2])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await producer.run(fleet, rate: Self.rate, duration: Self.streamDuration) }
            // A third of the way in, with events flowing, the primary dies without a word.
            guard await eventually(within: .seconds(20), { producer.acknowledgedCount >= Self.rate * 5 }) else {
                producer.halt()
                throw TestSupportError(
                    "the producer got only \(producer.acknowledgedCount) events accepted in 20 s before the failover")
            }
            redis.primary.signal(SIGKILL)
            killedAt.withLock { $0 = clock.now }
            try await redis.awaitPromotion(within: .seconds(20))
            promotedAt.withLock { $0 = clock.now }
        }
        // Every node writes to the new primary again and says it is ready.
        for node in 0..<3 {
            try await Self.post(
                fleet, node: node, ClusterEvents.progress(experiment: Self.experiment, sequence: Self.probe + node))
        }
        let ready = await eventually(within: .seconds(20)) { (0..<3).allSatisfy { watch.isReady($0) } }
        watch.stop()
        await watching
        #expect(ready, "every node should be ready again after the failover; \(fleet.logs())")
        try await Self.finish(fleet, node: 1, recorders: recorders)
        for client in clients { await client.stop() }

        let killed = try #require(killedAt.withLock { $0 })
        let promoted = try #require(promotedAt.withLock { $0 })
        let afterKill = producer.all.filter { $0.sent >= killed }
        let refused = afterKill.filter { $0.status != 202 }
        let statuses = Dictionary(grouping: refused, by: \.status).mapValues(\.count)
        // A node writes to the new primary once a post sent after the kill is accepted.
        let writingAgain = (0..<3).map { node in
            afterKill.filter { $0.node == node && $0.status == 202 }.map { $0.at - killed }.min()
        }
        // A post in flight at the kill: how long its answer took.
        let inFlight = producer.all.filter { $0.sent < killed && $0.at > killed }
            .map { "\($0.status) after \(($0.at - $0.sent).seconds) s" }
        let unready = (0..<3).map { node in
            watch.spells(of: node).filter { $0.from > killed }.map { ($0.until ?? clock.now) - $0.from }
                .reduce(.zero, +)
        }
        let acknowledged = producer.acknowledged
        let lostFromLog = acknowledged.subtracting(try await Self.sequencesInLog(of: redis.replica))
        let verdict = Self.expectContract(recorders, producer: producer, context: fleet.logs())
        print(
            """
            FailoverTests.caughtUpReplica: \(recorders.count) clients; \(producer.all.count) events posted, \
            \(acknowledged.count) accepted; Sentinel promoted the replica \((promoted - killed).seconds) s after SIGKILL; \
            nodes writing to the new primary after \(writingAgain.map { $0?.seconds ?? "never" }) s; \
            posts sent after the kill refused: \(statuses) (status 0: no answer in \(PacedProducer.postTimeout)); \
            posts in flight at the kill answered: \(inFlight); /readyz 503 per node: \(unready.map(\.seconds)) s; \
            accepted events missing from the new primary's log: \(lostFromLog.count); clients that reconnected: \
            \(recorders.count { $0.connections.count > 1 }); told recovery_failed: \(verdict.toldRecoveryFailed)
            """)
        #expect(
            writingAgain.allSatisfy { $0 != nil },
            "every node should accept a post sent after the failover: \(writingAgain)")
        #expect(
            (promoted - killed) < .seconds(15),
            "Sentinel should promote within 15 s (down-after \(SentinelCluster.downAfterMilliseconds) ms)")
    }

    /// A client that was away while events vanished: it left with its session and cursor,
    /// and comes back once the failover is over.
    struct AbsentClient {
        let session: String
        let cursor: String

        static func leave(_ fleet: GatewayFleet, node: Int, token: String) async throws -> AbsentClient {
            let socket = try await RawWebSocket.connect(
                port: fleet.node(node).port, path: "/ws/experiments/\(FailoverTests.experiment)?token=\(token)")
            defer { socket.close() }
            let connected = try await socket.nextMessage()
            return AbsentClient(
                session: try #require(connected["data"]?["sessionId"]?.stringValue),
                cursor: try #require(connected["cursor"]?.stringValue))
        }

        /// Resumes on `node`: the sequences replayed, and the `recovery_failed` reason if any.
        func resume(_ fleet: GatewayFleet, node: Int, token: String) async throws -> (
            replayed: [Int], failure: String?
        ) {
            let socket = try await RawWebSocket.connect(
                port: fleet.node(node).port,
                path: "/ws/experiments/\(FailoverTests.experiment)?token=\(token)&session=\(session)&cursor=\(cursor)")
            defer { socket.close() }
            var replayed: [Int] = []
            var failure: String?
            while true {
                let message = try await socket.nextMessage(timeout: .seconds(15))
                switch message["data"]?["action"]?.stringValue {
                case "replay_complete": return (replayed, failure)
                case "recovery_failed":
                    failure = message["data"]?["reason"]?.stringValue ?? "?"
                    return (replayed, failure)
                default:
                    if case .number(let text)? = message["data"]?["completedTasks"], let value = Int(text) {
                        replayed.append(value)
                    }
                }
            }
        }
    }

    // Before the nodes recorded a rewound log's floor, every client that was away while
    // acknowledged events vanished resumed without them and was not told.
    /// A Sentinel topology whose replica replicates through a link the test can cut, and three
    /// nodes through the Sentinels with `nodeArguments`. The caller stops all three.
    static func replicaBehindLink(nodeArguments: [String]) async throws -> (
        SentinelCluster, SeverableLink, GatewayFleet
    ) {
        let relay = Mutex<SeverableLink?>(nil)
        let redis = try await SentinelCluster.start { primaryPort in
            let link = try await SeverableLink.start(forwardingTo: primaryPort)
            relay.withLock { $0 = link }
            return link.port
        }
        guard let link = relay.withLock({ $0 }) else {
            redis.stop()
            throw TestSupportError("the replica's link was not made")
        }
        do {
            let fleet = try await GatewayFleet()
            do {
                for index in 1...3 {
                    try await fleet.launch(
                        name: "n\(index)",
                        redisArguments: [
                            "--redis-sentinels", redis.sentinelAddresses, "--redis-sentinel-master",
                            SentinelCluster.master,
                        ],
                        extraArguments: ["--redis-outage-grace", Self.outageGrace] + nodeArguments)
                }
            } catch {
                fleet.stop()
                throw error
            }
            return (redis, link, fleet)
        } catch {
            link.stop()
            redis.stop()
            throw error
        }
    }

    /// Sentinel may re-point the replica at the primary's own address (`+fix-slave-config`),
    /// which would carry replication around the link and leave nothing to lose: put it back
    /// behind the link, in sync, before the link is cut.
    static func replicateThrough(_ link: SeverableLink, replica: RedisDaemon) async throws {
        let info = try await replica.fields("INFO", "replication")
        guard info["master_port"] != "\(link.port)" else { return }
        print(
            "FailoverTests: Sentinel had re-pointed the replica at port \(info["master_port"] ?? "?"); back to the link"
        )
        _ = try await replica.cli("REPLICAOF", "127.0.0.1", "\(link.port)")
        guard
            await eventually(
                within: .seconds(10),
                {
                    let now = try? await replica.fields("INFO", "replication")
                    return now?["master_port"] == "\(link.port)" && now?["master_link_status"] == "up"
                })
        else { throw TestSupportError("the replica did not sync through the link again: \(replica.logTail())") }
    }

    @Test("the replica fell behind when the primary died: clients owed vanished events are told recovery_failed")
    func laggingReplica() async throws {
        // The replica must really fall behind for this to test anything. Each run waits
        // for acknowledged events beyond the replica's log before the kill; should the
        // promoted replica still hold them all (Sentinel pointing it at the primary around
        // the link, say), it tries again, up to three runs in all, and says why.
        for attempt in 1...3 {
            if try await Self.laggingReplicaRun() { return }
            print("FailoverTests.laggingReplica: attempt \(attempt): the replica did not fall behind")
        }
        Issue.record(
            "in three attempts the promoted replica never lacked an acknowledged event: the scenario was not set up")
    }

    /// One run of the scenario; false when the promoted replica lacked nothing (no lag).
    static func laggingReplicaRun() async throws -> Bool {
        let (redis, link, fleet) = try await Self.replicaBehindLink(nodeArguments: [])
        defer {
            fleet.stop()
            link.stop()
            redis.stop()
        }
        try await Self.post(
            fleet, node: 0, ClusterEvents.experiment(id: Self.experiment, project: Self.project, owner: "alice"))
        let token = try await fleet.token("alice", projects: [Self.project])
        var absent: [AbsentClient] = []
        for node in [0, 1, 2, 0, 1, 2] { absent.append(try await AbsentClient.leave(fleet, node: node, token: token)) }
        let (clients, recorders) = try await Self.clients(fleet, perNode: Self.clientsPerNode, homes: [0, 1, 2])
        let producer = PacedProducer(lanes: [0, 1, 2, 0], experiment: Self.experiment)
        var masterAtKill: String?
        var notBehind: String?

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await producer.run(fleet, rate: Self.rate, duration: Self.streamDuration) }
            guard await eventually(within: .seconds(20), { producer.acknowledgedCount >= Self.rate * 3 }) else {
                producer.halt()
                throw TestSupportError("only \(producer.acknowledgedCount) events accepted in 20 s before the cut")
            }
            try await Self.replicateThrough(link, replica: redis.replica)
            // The replica stops hearing from the primary, which goes on accepting events.
            link.sever()
            // Acknowledged events the replica does not hold: newer than the newest in its
            // log. (Counting answers after the cut was not enough: on a busy machine the
            // answers trail the writes, and the 150 that came after the cut had all been
            // written, and replicated, before it.)
            var beyond = 0
            let behind = await eventually(within: .seconds(15)) {
                try? await Task.sleep(for: .milliseconds(200))
                guard let newest = try? await Self.newestSequenceInLog(of: redis.replica) else { return false }
                beyond = producer.acknowledged.count { $0 > newest }
                return beyond >= 150
            }
            guard behind else {
                // Sentinel can re-point the replica around the link between the check above
                // and the cut (`+fix-slave-config`): then it hears everything, and this run
                // set nothing up. Another run, as when the replica holds everything at the end.
                producer.halt()
                let replica = try? await redis.replica.fields("INFO", "replication")
                notBehind =
                    "only \(beyond) acknowledged events beyond the replica's log 15 s after the cut; it replicates "
                    + "from port \(replica?["master_port"] ?? "?") (the link: \(link.port))"
                return
            }
            let replicaAtKill = try? await redis.replica.fields("INFO", "replication")
            let primaryAtKill = try? await redis.primary.fields("INFO", "replication")
            masterAtKill =
                "port \(replicaAtKill?["master_port"] ?? "?") (the link: \(link.port)); replication offsets at the "
                + "kill: replica \(replicaAtKill?["slave_repl_offset"] ?? "?"), primary "
                + "\(primaryAtKill?["master_repl_offset"] ?? "?")"
            redis.primary.signal(SIGKILL)
            // What the replica had not received dies with the primary.
            link.stop()
            try await redis.awaitPromotion(within: .seconds(20))
        }
        if let notBehind {
            print("FailoverTests.laggingReplica: \(notBehind)")
            for client in clients { await client.stop() }
            return false
        }
        let lostFromLog = producer.acknowledged.subtracting(try await Self.sequencesInLog(of: redis.replica))
        guard !lostFromLog.isEmpty else {
            // Equal offsets: the cut let the primary's last writes through. A replica behind
            // at the kill that still holds everything got them after it.
            print("FailoverTests.laggingReplica: at the kill the replica replicated from \(masterAtKill ?? "?")")
            return false
        }

        var silent: [String] = []
        var told = 0
        for (index, client) in absent.enumerated() {
            let (replayed, failure) = try await client.resume(fleet, node: index % 3, token: token)
            if failure != nil {
                told += 1
                continue
            }
            let missing = producer.acknowledged.subtracting(replayed)
            if !missing.isEmpty { silent.append("absent client \(index): \(missing.count) missing, replay complete") }
        }
        #expect(silent.isEmpty, "clients that resumed past vanished events must get recovery_failed: \(silent)")

        // The live clients of one node now resume elsewhere, from cursors near the lost range.
        fleet.kill9(0)
        try await Self.finish(fleet, node: 1, recorders: recorders)
        for client in clients { await client.stop() }
        let verdict = Self.expectContract(recorders, producer: producer, context: fleet.logs())
        print(
            """
            FailoverTests.laggingReplica: \(producer.acknowledged.count) accepted, \(lostFromLog.count) of them \
            missing from the promoted replica's log; absent clients told recovery_failed: \(told) of \(absent.count); \
            live clients told recovery_failed: \(verdict.toldRecoveryFailed) of \(recorders.count)
            """)
        return true
    }

    @Test("with --durable-replicas 1, every acknowledged event survives a failover to a replica that fell behind")
    func durableLaggingReplica() async throws {
        // As in `laggingReplica`: Sentinel may re-point the replica around the link, and then
        // nothing is cut off and the posts are rightly acknowledged; that run tries again.
        for attempt in 1...3 {
            if try await Self.durableLaggingReplicaRun() { return }
            print("FailoverTests.durableLaggingReplica: attempt \(attempt): the replica was re-pointed around the link")
        }
        Issue.record("in three attempts the replica was always re-pointed around the link: the scenario was not set up")
    }

    /// One run; false when the posts after the cut were acknowledged because the replica
    /// replicates around the link.
    static func durableLaggingReplicaRun() async throws -> Bool {
        let (redis, link, fleet) = try await Self.replicaBehindLink(
            nodeArguments: ["--durable-replicas", "1", "--durable-timeout", "300ms"])
        defer {
            fleet.stop()
            link.stop()
            redis.stop()
        }
        try await Self.post(
            fleet, node: 0, ClusterEvents.experiment(id: Self.experiment, project: Self.project, owner: "alice"))
        let (clients, recorders) = try await Self.clients(fleet, perNode: Self.clientsPerNode, homes: [0, 1, 2])
        let producer = PacedProducer(lanes: [0, 1, 2, 0], experiment: Self.experiment)
        var refusedAfterCut = 0
        var rerouted: String?
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await producer.run(fleet, rate: Self.rate, duration: Self.streamDuration) }
            guard await eventually(within: .seconds(20), { producer.acknowledgedCount >= Self.rate * 3 }) else {
                producer.halt()
                throw TestSupportError("only \(producer.acknowledgedCount) events accepted in 20 s before the cut")
            }
            try await Self.replicateThrough(link, replica: redis.replica)
            link.sever()
            let answersAtCut = producer.all.count
            // The primary goes on taking the producer's events, but cannot get them to the
            // replica: the nodes must not acknowledge them.
            guard
                await eventually(
                    within: .seconds(10),
                    {
                        producer.all.dropFirst(answersAtCut).count { $0.status == 503 } >= 20
                    })
            else {
                producer.halt()
                let replica = try? await redis.replica.fields("INFO", "replication")
                if let port = replica?["master_port"], port != "\(link.port)" {
                    rerouted = "it replicates from port \(port) (the link: \(link.port))"
                    return
                }
                throw TestSupportError("posts after the cut were not refused: \(producer.all.suffix(5))")
            }
            refusedAfterCut = producer.all.dropFirst(answersAtCut).count { $0.status == 503 }
            redis.primary.signal(SIGKILL)
            link.stop()
            try await redis.awaitPromotion(within: .seconds(20))
        }
        if let rerouted {
            print("FailoverTests.durableLaggingReplica: posts after the cut were acknowledged: \(rerouted)")
            for client in clients { await client.stop() }
            return false
        }
        let inLog = try await Self.sequencesInLog(of: redis.replica)
        let lost = producer.acknowledged.subtracting(inLog)
        #expect(lost.isEmpty, "acknowledged events missing from the promoted replica: \(lost.sorted().prefix(10))")
        // The new primary has no replica: nothing can be acknowledged until one syncs.
        let token = try await fleet.token("producer", roles: ["service"])
        #expect(
            await PacedProducer.post(
                fleet, 1, ClusterEvents.progress(experiment: Self.experiment, sequence: Self.probe), token) == 503)
        let spare = try await RedisDaemon.server(name: "spare", in: redis.directory, replicaOf: redis.replica.port)
        defer { spare.signal(SIGKILL) }
        try await Self.finish(fleet, node: 1, recorders: recorders)
        for client in clients { await client.stop() }
        _ = Self.expectContract(recorders, producer: producer, context: fleet.logs())
        print(
            """
            FailoverTests.durableLaggingReplica: \(producer.acknowledged.count) acknowledged, all in the promoted \
            replica's log: \(lost.isEmpty); refused after the cut: \(refusedAfterCut)
            """)
        return true
    }

    @Test("one node is cut off from Redis: it turns unready, and its clients lose nothing acknowledged elsewhere")
    func partition() async throws {
        let redis = try await RedisServerProcess.start()
        defer { redis.stop() }
        let link = try await SeverableLink.start(forwardingTo: redis.port)
        defer { link.stop() }
        let fleet = try await GatewayFleet()
        defer { fleet.stop() }
        let grace = ["--redis-outage-grace", Self.outageGrace]
        try await fleet.launch(name: "n1", redisArguments: ["--redis-url", redis.url], extraArguments: grace)
        try await fleet.launch(name: "n2", redisArguments: ["--redis-url", redis.url], extraArguments: grace)
        let cut = try await fleet.launch(
            name: "n3", redisArguments: ["--redis-url", "redis://127.0.0.1:\(link.port)/0"], extraArguments: grace)
        try await Self.post(
            fleet, node: 0, ClusterEvents.experiment(id: Self.experiment, project: Self.project, owner: "alice"))
        // Most clients on the node that will be cut off, a few elsewhere to compare.
        let (clients, recorders) = try await Self.clients(fleet, perNode: Self.clientsPerNode, homes: [cut, 0])
        let producer = PacedProducer(lanes: [0, 1, 0, 1], experiment: Self.experiment)
        let clock = ContinuousClock()
        let timings = Mutex<(unready: Duration, ready: Duration)?>(nil)
        let window = Mutex<(severed: ContinuousClock.Instant, healed: ContinuousClock.Instant)?>(nil)
        let refusedWhileCut = Atomic<Int>(-1)
        let watch = ReadinessWatch()
        async let watching: Void = watch.run(fleet, nodes: [cut])

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await producer.run(fleet, rate: Self.rate, duration: Self.streamDuration) }
            guard await eventually(within: .seconds(20), { producer.acknowledgedCount >= Self.rate * 2 }) else {
                producer.halt()
                throw TestSupportError("only \(producer.acknowledgedCount) events accepted in 20 s before the cut")
            }
            link.sever()
            let severed = clock.now
            let atCut = producer.acknowledgedCount
            guard await eventually(within: .seconds(20), { await fleet.readiness(cut) != 200 }) else {
                producer.halt()
                throw TestSupportError("the cut-off node still answered /readyz 200 after 20 s; \(fleet.logTail(cut))")
            }
            let unready = clock.now - severed
            // A node that cannot reach Redis must not acknowledge an event it cannot log.
            let service = try await fleet.token("producer", roles: ["service"])
            let probe = ClusterEvents.progress(experiment: Self.experiment, sequence: Self.probe)
            refusedWhileCut.store(await PacedProducer.post(fleet, cut, probe, service), ordering: .relaxed)
            // Events keep being accepted by the other nodes while it is cut off.
            guard await eventually(within: .seconds(10), { producer.acknowledgedCount >= atCut + Self.rate * 3 }) else {
                producer.halt()
                throw TestSupportError("the other nodes accepted only \(producer.acknowledgedCount - atCut) events")
            }
            link.heal()
            let healed = clock.now
            guard await eventually(within: .seconds(20), { await fleet.readiness(cut) == 200 }) else {
                producer.halt()
                throw TestSupportError("the cut-off node was not ready 20 s after the heal; \(fleet.logTail(cut))")
            }
            timings.withLock { $0 = (unready, clock.now - healed) }
            window.withLock { $0 = (severed, healed) }
        }
        watch.stop()
        await watching
        let (severed, healed) = try #require(window.withLock { $0 })
        let spells = watch.spells(of: cut).filter { $0.from >= severed }
        let described = spells.map { spell in
            "\((spell.from - severed).seconds)…\(spell.until.map { ($0 - severed).seconds } ?? "-") s"
        }
        #expect(
            spells.count == 1 && (spells.first?.until ?? healed) >= healed,
            """
            the cut-off node should stay unready from the cut until the heal; unready after the cut: \(described)
            \(fleet.logTail(cut, lines: 40))
            """)
        #expect(
            refusedWhileCut.load(ordering: .relaxed) != 202,
            "the cut-off node answered 202 to an event it could not log")
        try await Self.finish(fleet, node: cut, recorders: recorders)
        for client in clients { await client.stop() }
        let verdict = Self.expectContract(recorders, producer: producer, context: fleet.logs())
        let moved = recorders.prefix(Self.clientsPerNode).count { $0.connections.count > 1 }
        let (unready, ready) = try #require(timings.withLock { $0 })
        print(
            """
            FailoverTests.partition: \(producer.acknowledged.count) accepted; cut-off node unready \(unready.seconds) s \
            after the cut, ready \(ready.seconds) s after the heal; a post to it while cut off was answered \
            \(refusedWhileCut.load(ordering: .relaxed)); of its \(Self.clientsPerNode) clients \(moved) \
            reconnected; clients told recovery_failed: \(verdict.toldRecoveryFailed)
            """)
    }
}
