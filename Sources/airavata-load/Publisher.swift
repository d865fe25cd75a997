import AiravataClient
import AiravataProtocol
import Foundation
import NIOCore
import NIOPosix

/// The producer: publishes numbered events through the HTTP API, retrying what was refused.
struct Publisher: Sendable {
    /// Where each published event went, and whether a retry might have stored it twice.
    struct Published: Sendable {
        var experiment: [Int: Int] = [:]
        /// Sequences retried after a failure that may have happened after the gateway stored
        /// the event (a lost response): a duplicate of these is the producer's, not the gateway's.
        var ambiguous: Set<Int> = []
        var givenUp: Set<Int> = []
        var retries = 0
        var count: Int { experiment.count }
    }

    private let client: GatewayHTTPClient
    private let token: String

    init(http: String, token: String) throws {
        self.client = try GatewayHTTPClient(url: http)
        self.token = token
    }

    /// Experiment events first, so the cluster knows each experiment's project and owner and
    /// can route and authorise the progress events.
    func announce(experiments: [String], project: String) async throws {
        let events = JSONValue.array(
            experiments.map { id in
                .object([
                    "type": .string("experiment_updated"),
                    "data": .object([
                        "experiment": .object([
                            "id": .string(id), "status": .string("RUNNING"), "ownerId": .string("load-owner"),
                            "projectId": .string(project),
                        ])
                    ]),
                ])
            })
        let response = try await client.publish(json: events.jsonString, token: token)
        guard response.status == 202 else {
            throw GatewayClientError(
                "announcing the experiments failed: HTTP \(response.status) \(response.bodyString)")
        }
    }

    static func progress(experiment: String, sequence: Int, probe: Bool = false) -> JSONValue {
        var data: JSONObject = ["experimentId": .string(experiment), "completedTasks": .integer(sequence)]
        if probe { data["probe"] = .bool(true) }
        return .object(["type": .string("experiment_progress"), "data": .object(data)])
    }

    enum Attempt {
        case accepted
        /// Certainly not stored (refused connection, or an answer that says so).
        case refused(String)
        /// Unknown: the request may have been stored before the failure.
        case unknown(String)
    }

    func post(_ event: JSONValue) async -> Attempt {
        do {
            let response = try await client.publish(json: event.jsonString, token: token)
            switch response.status {
            case 202: return .accepted
            // 502/504 from a proxy: the node may have stored it and died before answering.
            case 502, 504: return .unknown("HTTP \(response.status)")
            default: return .refused("HTTP \(response.status)")
            }
        } catch let error as NIOConnectionError {
            return .refused("\(error)")
        } catch {
            return .unknown("\(error)")
        }
    }

    /// Publishes at `rate` until told to stop; returns what it published.
    func publish(rate: Double, experiments: [String], until stop: StopSignal) async -> Published {
        var published = Published()
        let clock = ContinuousClock()
        let start = clock.now
        let interval = 1.0 / rate
        var sequence = 0
        while !stop.stopped {
            sequence += 1
            let due = start + .milliseconds(Int64(Double(sequence - 1) * interval * 1000))
            if due > clock.now { try? await clock.sleep(until: due) }
            let index = sequence % experiments.count
            let event = Self.progress(experiment: experiments[index], sequence: sequence)
            var attempts = 0
            var ambiguous = false
            retrying: while true {
                attempts += 1
                let reason: String
                switch await post(event) {
                case .accepted:
                    break retrying
                case .refused(let why):
                    reason = why
                case .unknown(let why):
                    reason = why
                    ambiguous = true
                }
                published.retries += 1
                if attempts > 200 {
                    FileHandle.standardError.write(Data("giving up on event \(sequence): \(reason)\n".utf8))
                    published.givenUp.insert(sequence)
                    break retrying
                }
                try? await Task.sleep(for: .milliseconds(25))
            }
            if !published.givenUp.contains(sequence) { published.experiment[sequence] = index }
            if ambiguous { published.ambiguous.insert(sequence) }
        }
        return published
    }
}
