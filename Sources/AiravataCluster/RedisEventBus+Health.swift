package import AiravataCore
import AiravataRedis
import Logging
import NIOCore
import Synchronization

/// The node's self-heartbeat through Redis pub/sub, and the health `/readyz` reports.
extension RedisEventBus {
    // MARK: Heartbeat

    /// Publishes to this node's own channel; a subscriber that stops hearing it is presumed
    /// half-open and rebuilt.
    func heartbeatLoop() async {
        let interval = configuration.heartbeatSeconds
        let limitNanos = UInt64(max(3 * interval, 1) * 1e9)
        var sequence = 0
        while (try? await Task.sleep(for: .milliseconds(Int64(interval * 1000)))) != nil {
            sequence += 1
            _ = try? await client.send(
                RedisCommand(
                    "PUBLISH", RedisArgument(keys.heartbeatChannel(instance: instance)), RedisArgument(sequence))
            )
            let now = NIODeadline.now().uptimeNanoseconds
            let silent = state.withLock { state -> Bool in
                guard state.subscribedOnce, now &- state.lastHeartbeatNanos > limitNanos,
                    now &- state.lastSilenceRebuildNanos > limitNanos
                else { return false }
                state.lastSilenceRebuildNanos = now
                return true
            }
            if silent, client.link == .connected, subscriber.link == .connected {
                logger.warning("no heartbeat through Redis pub/sub; rebuilding the subscriber connection")
                subscriber.reconnect()
            }
            if configuration.busFormat == .automatic { await checkForOlderNodes() }
        }
    }

    /// Counts the subscribers of both event channels: every node that reads v2 reads both, so
    /// more on the v1 channel means an older node is in the cluster, and this node keeps
    /// writing v1 until it leaves. An older node that joins (a rollback) is noticed within a
    /// heartbeat; `--bus-format v1` closes even that gap (docs/operations.md).
    private func checkForOlderNodes() async {
        guard
            let reply = try? await client.send(
                RedisCommand(
                    "PUBSUB", "NUMSUB", RedisArgument(keys.eventChannel), RedisArgument(keys.eventBatchChannel))),
            let counts = reply.array, counts.count == 4,
            let v1 = counts[1].integer, let v2 = counts[3].integer
        else { return }
        let older = v1 > v2
        let seen: UInt8 = older ? 1 : 2
        guard olderNodes.exchange(seen, ordering: .relaxed) != seen else { return }
        if older {
            logger.notice(
                "a node that reads only v1 bus messages is in the cluster; writing v1 until it leaves",
                metadata: ["v1.subscribers": "\(v1)", "v2.subscribers": "\(v2)"])
        } else {
            logger.notice("every node reads v2 bus messages; writing v2")
        }
    }

    // MARK: Health

    package func health() -> EventBusHealth {
        let now = NIODeadline.now().uptimeNanoseconds
        let (subscribedOnce, lastHeartbeat, gapFills, replayed, rejected, held) = state.withLock {
            ($0.subscribedOnce, $0.lastHeartbeatNanos, $0.gapFills, $0.replayed, $0.rejectedMessages, $0.held.count)
        }
        let grace = UInt64(configuration.outageGraceSeconds * 1e9)
        func down(_ link: RedisLinkState) -> UInt64? {
            switch link {
            case .connected: nil
            case .connecting: .max
            case .disconnected(let since): now &- since
            }
        }
        let heartbeatAge = subscribedOnce ? Double(now &- lastHeartbeat) / 1e9 : nil
        var reason: String?
        if !subscribedOnce {
            reason = "not yet subscribed to Redis pub/sub"
        } else if let outage = down(client.link), outage > grace {
            reason = "Redis unreachable (commands)"
        } else if let outage = down(subscriber.link), outage > grace {
            reason = "Redis unreachable (pub/sub)"
        } else if let heartbeatAge,
            heartbeatAge > max(configuration.outageGraceSeconds, 3 * configuration.heartbeatSeconds)
        {
            reason = "no heartbeat through Redis pub/sub for \(Int(heartbeatAge)) s"
        }
        var health = EventBusHealth(
            ready: reason == nil,
            reason: reason,
            links: [
                .init(role: "commands", up: client.link == .connected),
                .init(role: "subscriber", up: subscriber.link == .connected),
            ],
            heartbeatAgeSeconds: heartbeatAge,
            gapFills: gapFills,
            replayedEvents: replayed
        )
        health.rejectedMessages = rejected
        health.heldMessages = held
        return health
    }
}
