package import AiravataProtocol
import Logging
package import NIOCore
import Synchronization

/// Messages the node originates: control replies, errors, statistics, broadcasts.
extension Gateway {
    package func control(_ type: MessageType, prefix: String, data: JSONValue? = nil) -> Envelope {
        let sequence = controlSequence.add(1, ordering: .relaxed).newValue
        return Envelope(
            type: type,
            id: MessageID.control(prefix, sequence: sequence),
            timestamp: Timestamp.iso8601(unixSeconds: WallClock.nowMicros() / 1_000_000),
            data: data
        )
    }

    package func errorMessage(_ text: String) -> Envelope {
        var envelope = control(.error, prefix: "error")
        envelope.error = text
        return envelope
    }

    package func statusMessage() async -> Envelope {
        statusMessage(await clusterStatistics())
    }

    /// A `system_status` message with these figures.
    package func statusMessage(_ statistics: StatisticsSnapshot) -> Envelope {
        let now = WallClock.nowMicros()
        return Envelope(
            type: .systemStatus,
            id: MessageID.system(unixMillis: now / 1000),
            timestamp: Timestamp.iso8601(unixSeconds: now / 1_000_000),
            data: statistics.json
        )
    }

    /// Publishes this node's figures where the other nodes read them.
    package func reportStatistics() async {
        do {
            let report = statistics.report()
            let started = ContinuousClock.now
            try await statisticsStore.publish(report)
            if statisticsStore.isShared {
                let elapsed = (ContinuousClock.now - started).components
                statistics.storeRoundTrip(
                    micros: Int(elapsed.seconds) * 1_000_000 + Int(elapsed.attoseconds / 1_000_000_000_000))
            }
        } catch {
            logger.debug("statistics report failed", metadata: ["error": "\(error)"])
        }
    }

    /// Cluster-wide figures; this node's own when the shared store is unreachable.
    package func clusterStatistics() async -> StatisticsSnapshot {
        let now = WallClock.nowMicros()
        guard statisticsStore.isShared else { return statistics.snapshot(nowMicros: now) }
        do {
            // Every node reads the same stored reports, so all of them answer the same totals.
            var reports = try await statisticsStore.collect()
            if !reports.contains(where: { $0.nodeID == configuration.nodeID }) {
                reports.append(statistics.report(nowMicros: now))
            }
            return StatisticsSnapshot.aggregate(reports, nodeID: configuration.nodeID, nowMicros: now)
        } catch {
            logger.debug(
                "statistics store unreachable; answering with this node's figures", metadata: ["error": "\(error)"])
            return statistics.snapshot(nowMicros: now)
        }
    }

    package func busHealth() -> EventBusHealth {
        bus.health()
    }

    /// The wire bytes of a message, framed for the connections.
    package func frame(_ envelope: Envelope) -> ByteBuffer {
        frames.frame(envelope.encoded())
    }

    /// Sends a message to every local connection (statistics, shutdown notices).
    package func broadcastLocally(_ envelope: Envelope) {
        dispatch(frames.frame(envelope.encoded()), cursor: nil, to: index.allByLoop())
    }
}
