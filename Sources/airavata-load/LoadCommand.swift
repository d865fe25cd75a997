import AiravataClient
import AiravataCore
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// Opens many clients through one URL, publishes numbered events at a steady rate, and
/// checks at the end that every client got every event of its experiment once and in order.
/// Drives the rolling-upgrade test (cluster/rolling-upgrade.py) and load measurements.
@main
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "airavata-load",
        abstract: "Subscribers + producer against a gateway (or a load balancer), counting every event.",
        discussion: """
            Half of the clients subscribe through the URL path (/ws/experiments/E), half with an
            explicit subscribe message. When all are subscribed it prints READY and publishes
            experiment_progress events round-robin over the experiments. It stops publishing
            after --duration seconds, or when a line "stop" (or end of file) arrives on stdin.
            Then it waits for deliveries to settle, sends one probe event per experiment to find
            lost subscriptions, prints a report and a JSON summary (last line), and exits 0 only
            if nothing was lost, duplicated or reordered.
            """
    )

    @Option(help: "WebSocket base URL, e.g. ws://127.0.0.1:8080.")
    var url: String
    @Option(help: "HTTP base URL for publishing, e.g. http://127.0.0.1:8080.")
    var http: String
    @Option(help: "HS256 secret shared with the gateway, to mint tokens [AIRAVATA_JWT_SECRET].")
    var secret: String?
    @Option(help: "Subscribing clients.")
    var clients = 300
    @Option(help: "Experiments the clients are spread over.")
    var experiments = 20
    @Option(help: "Events published per second.")
    var rate = 100.0
    @Option(help: "Stop publishing after this many seconds (default: wait for 'stop' on stdin).")
    var duration: Double?
    @Option(help: "Seconds to wait for deliveries and probes to arrive after publishing stops.")
    var settle = 30.0
    @Option(help: "Clients connecting at once while setting up.")
    var connectConcurrency = 50
    @Flag(help: "Reconnect without resuming the session (the negative control).")
    var noResume = false

    func validate() throws {
        guard clients > 0, experiments > 0, rate > 0 else {
            throw ValidationError("--clients, --experiments and --rate must be positive")
        }
        guard url.hasPrefix("ws://"), http.hasPrefix("http://") else {
            throw ValidationError("--url must start with ws:// and --http with http://")
        }
    }

    func run() async throws {
        guard let secret = secret ?? ProcessInfo.processInfo.environment["AIRAVATA_JWT_SECRET"] else {
            throw ValidationError("give --secret or set AIRAVATA_JWT_SECRET")
        }
        let issuer = await TokenIssuer(hmacSecret: secret)
        let publisher = try Publisher(
            http: http, token: try await issuer.token(subject: "load-producer", roles: ["service"], lifetime: 86_400))
        let experimentIDs = (0..<experiments).map { "load-exp-\($0)" }
        try await publisher.announce(experiments: experimentIDs, project: Tally.project)

        let group = MultiThreadedEventLoopGroup.singleton
        let subscribers = try await Subscriber.connectAll(
            count: clients, experiments: experimentIDs, url: url, issuer: issuer, resume: !noResume,
            concurrency: connectConcurrency, group: group)
        say("READY clients=\(subscribers.count) experiments=\(experiments) rate=\(rate)")

        let stop = StopSignal(after: duration)
        let published = await publisher.publish(
            rate: rate, experiments: experimentIDs, until: stop)
        say("publishing stopped after \(published.count) events; settling")

        let report = await Report.collect(
            subscribers: subscribers, published: published, publisher: publisher, experiments: experimentIDs,
            settleSeconds: settle)
        for subscriber in subscribers { await subscriber.client.stop() }
        report.print()
        if !report.passed { throw ExitCode(1) }
    }
}

/// Ends publishing after a duration, or when stdin says "stop" or closes.
final class StopSignal: Sendable {
    private let deadline: ContinuousClock.Instant?
    private let stdinClosed = ManagedFlag()

    init(after seconds: Double?) {
        deadline = seconds.map { ContinuousClock.now + .milliseconds(Int64($0 * 1000)) }
        if seconds == nil {
            let flag = stdinClosed
            Thread.detachNewThread {
                while let line = readLine() {
                    if line.trimmingCharacters(in: .whitespaces) == "stop" { break }
                }
                flag.set()
            }
        }
    }

    var stopped: Bool {
        if let deadline { return ContinuousClock.now >= deadline }
        return stdinClosed.isSet
    }
}
