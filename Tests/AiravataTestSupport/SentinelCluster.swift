public import Foundation

/// A Redis primary, one replica and three Sentinels on loopback, as a Kubernetes Redis chart
/// runs them, with timings short enough for a test.
public final class SentinelCluster: Sendable {
    public static let master = "airavata-test"
    /// Sentinels that must agree the primary is down before one of them fails it over.
    public static let quorum = 2
    /// How long the primary must be silent before a Sentinel calls it down: the floor of
    /// every failover time the tests measure.
    public static let downAfterMilliseconds = 1000
    /// Sentinel's retry interval for a failover that stalls; small, so a test never waits on it.
    public static let failoverTimeoutMilliseconds = 3000

    public let primary: RedisDaemon
    public let replica: RedisDaemon
    public let sentinels: [RedisDaemon]
    public let directory: URL

    /// `host:port,…` for `--redis-sentinels`.
    public var sentinelAddresses: String { sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",") }

    private init(primary: RedisDaemon, replica: RedisDaemon, sentinels: [RedisDaemon], directory: URL) {
        self.primary = primary
        self.replica = replica
        self.sentinels = sentinels
        self.directory = directory
    }

    /// Starts the topology and returns once the replica is in sync and every Sentinel knows
    /// the replica and the other two Sentinels (without that, a failover cannot happen).
    ///
    /// - Parameter replicaUpstream: the port the replica replicates from, when the test puts
    ///   something (a ``SeverableLink``) between it and the primary; the primary's port
    ///   otherwise. Called with the primary's port.
    public static func start(replicaUpstream: (Int) async throws -> Int = { $0 }) async throws -> SentinelCluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sentinel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let primary = try await RedisDaemon.server(name: "primary", in: directory)
        let upstream = try await replicaUpstream(primary.port)
        let replica = try await RedisDaemon.server(name: "replica", in: directory, replicaOf: upstream)
        let synced = await eventually(within: .seconds(15)) {
            (try? await replica.fields("INFO", "replication"))?["master_link_status"] == "up"
        }
        guard synced else { throw TestSupportError("the replica never synced with the primary; \(replica.logTail())") }
        var sentinels: [RedisDaemon] = []
        for index in 1...3 {
            sentinels.append(
                try await RedisDaemon.sentinel(
                    name: "sentinel\(index)", in: directory, master: master, masterPort: primary.port,
                    quorum: quorum, downAfterMilliseconds: downAfterMilliseconds,
                    failoverTimeoutMilliseconds: failoverTimeoutMilliseconds))
        }
        let cluster = SentinelCluster(primary: primary, replica: replica, sentinels: sentinels, directory: directory)
        for sentinel in sentinels {
            // Sentinels find each other through hello messages every 2 s.
            let acquainted = await eventually(within: .seconds(20)) {
                let fields = (try? await sentinel.fields("SENTINEL", "MASTER", master)) ?? [:]
                return fields["num-other-sentinels"] == "2" && fields["num-slaves"] == "1"
            }
            guard acquainted else {
                let fields = (try? await sentinel.fields("SENTINEL", "MASTER", master)) ?? [:]
                throw TestSupportError(
                    "\(sentinel.name) should know 2 other Sentinels and 1 replica, knows "
                        + "\(fields["num-other-sentinels"] ?? "?") and \(fields["num-slaves"] ?? "?"); "
                        + sentinel.logTail())
            }
        }
        return cluster
    }

    /// The master's port as each Sentinel names it (nil where one does not answer).
    public func masterPorts() async -> [Int?] {
        var ports: [Int?] = []
        for sentinel in sentinels {
            let output = try? await sentinel.cli("SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self.master)
            ports.append(output?.split(whereSeparator: \.isNewline).last.flatMap { Int($0) })
        }
        return ports
    }

    /// Waits until every Sentinel names the replica as master and the replica says it is one.
    public func awaitPromotion(within timeout: Duration) async throws {
        let promoted = await eventually(within: timeout) {
            let ports = await self.masterPorts()
            guard ports.allSatisfy({ $0 == self.replica.port }) else { return false }
            return (try? await self.replica.fields("INFO", "replication"))?["role"] == "master"
        }
        guard promoted else {
            throw TestSupportError(
                "Sentinel did not promote the replica (port \(replica.port)) within \(timeout); the Sentinels name "
                    + "\(await masterPorts()); \(sentinels[0].logTail())")
        }
    }

    /// Everything a failing test should show.
    public func logs() -> String {
        ([primary, replica] + sentinels).map { $0.logTail() }.joined(separator: "\n")
    }

    public func stop() {
        for daemon in [primary, replica] + sentinels {
            daemon.signal(SIGCONT)
            daemon.signal(SIGKILL)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
