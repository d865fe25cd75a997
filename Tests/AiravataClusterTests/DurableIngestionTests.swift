import AiravataClient
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// `--durable-replicas`: a 202 means the replicas hold the event; a replica that does not
/// answer turns acknowledgements into 503, which a producer retries.
@Suite("Cluster: durable ingestion (WAIT for replicas)", .serialized)
struct DurableIngestionTests {
    /// The durable node's `--durable-timeout`.
    static let timeoutMilliseconds = 2000

    static func event(_ sequence: Int) -> JSONValue {
        .array([ClusterEvents.progress(experiment: "exp-durable", sequence: sequence)])
    }

    /// The node's answer to one event: status, and the cursor when accepted.
    static func post(_ fleet: GatewayFleet, _ sequence: Int) async throws -> (Int, String?) {
        let token = try await fleet.token("producer", roles: ["service"])
        let response = try await fleet.http(0).publish(json: event(sequence).jsonString, token: token)
        let cursor = (try? JSONValue(parsing: response.bodyString))?["cursors"]?.arrayValue?.first?.stringValue
        return (response.status, cursor)
    }

    @Test("a 202 means the replica holds the event; with the replica silent the node answers 503, without the flag 202")
    func waitsForTheReplica() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("durable-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let primary = try await RedisDaemon.server(name: "primary", in: directory)
        defer { primary.signal(SIGKILL) }
        let replica = try await RedisDaemon.server(name: "replica", in: directory, replicaOf: primary.port)
        defer {
            replica.signal(SIGCONT)
            replica.signal(SIGKILL)
        }
        guard
            await eventually(
                within: .seconds(10),
                {
                    (try? await replica.fields("INFO", "replication"))?["master_link_status"] == "up"
                })
        else { throw TestSupportError("the replica did not sync: \(replica.logTail())") }

        let durable = try await GatewayFleet()
        defer { durable.stop() }
        // Long enough for a healthy replica's acknowledgement on a loaded CI machine (with
        // 300 ms the first event was once refused there, the replica merely slow).
        try await durable.launch(
            name: "durable", redisArguments: ["--redis-url", "redis://127.0.0.1:\(primary.port)/0"],
            extraArguments: ["--durable-replicas", "1", "--durable-timeout", "\(Self.timeoutMilliseconds)ms"])
        let (status, cursor) = try await Self.post(durable, 1)
        #expect(status == 202)
        let id = try #require(cursor)
        // Acknowledged means replicated: the replica has it now, not eventually.
        let onReplica = try await replica.cli("XRANGE", "airavata:events", id, id)
        #expect(onReplica.contains("completedTasks"), "the replica lacks \(id) right after the 202: \(onReplica)")

        // A replica that does not acknowledge: the node cannot promise durability.
        replica.signal(SIGSTOP)
        let started = ContinuousClock.now
        let (refused, _) = try await Self.post(durable, 2)
        let waited = ContinuousClock.now - started
        #expect(refused == 503, "expected 503 while the replica is silent, got \(refused)")
        #expect(
            waited >= .milliseconds(Self.timeoutMilliseconds - 50) && waited < .seconds(8), "answered after \(waited)")

        // The negative control: a node without the flag acknowledges at once.
        let plain = try await GatewayFleet()
        defer { plain.stop() }
        try await plain.launch(name: "plain", redisArguments: ["--redis-url", "redis://127.0.0.1:\(primary.port)/0"])
        let (quick, _) = try await Self.post(plain, 3)
        #expect(quick == 202)

        // The replica back: acknowledgements resume.
        replica.signal(SIGCONT)
        #expect(await eventually(within: .seconds(10)) { (try? await Self.post(durable, 4))?.0 == 202 })
    }

    @Test("the flag needs Redis, and a sane timeout")
    func flags() async throws {
        let alone = try await runToCompletion(try gatewayBinary(), ["serve", "--dev", "--durable-replicas", "1"])
        #expect(alone.0 != 0)
        #expect(alone.1.contains("durable ingestion waits for Redis replicas"), "\(alone.1)")
        let slow = try await runToCompletion(
            try gatewayBinary(),
            [
                "serve", "--dev", "--redis-url", "redis://127.0.0.1:1/0", "--durable-replicas", "1",
                "--durable-timeout", "2m",
            ])
        #expect(slow.0 != 0)
        #expect(slow.1.contains("--durable-timeout: at most 60s"), "\(slow.1)")
    }
}
