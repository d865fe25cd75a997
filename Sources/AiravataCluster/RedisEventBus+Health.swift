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
        var floorAboveBlocks: EventCursor?
        var raise = FormatRaise(checks: max(1, Int((Self.formatRaiseSeconds / interval).rounded(.up))))
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
            // A loss another node recorded while this node's subscriber stayed up.
            try? await judgeReportedLoss()
            if configuration.busFormat == .automatic { await checkForOlderNodes(&raise) }
            if writtenFormat < .v3 { floorAboveBlocks = await raiseFloorAboveBlocks(past: floorAboveBlocks) }
        }
    }

    /// While this node writes a form older than v3 (pinned for a rollback, or an older node
    /// is in the cluster), a release before v3 may read the log. It takes a v3 block for an
    /// entry without an event, so a resume it serves from before the block would skip the
    /// block's events without a word. With the floor at the newest block's last cursor such a
    /// resume fails (`recovery_failed`: the client refetches) on every node instead; resumes
    /// this node answers from memory are not affected. Returns the floor it last set.
    private func raiseFloorAboveBlocks(past raised: EventCursor?) async -> EventCursor? {
        guard
            let reply = try? await client.send(RedisCommand("LINDEX", RedisArgument(keys.logBlocks), "-1")),
            let text = reply.string
        else { return raised }
        let parts = text.split(separator: " ")
        guard parts.count == 2, let first = EventCursor(parts[0]), let count = Int(parts[1]),
            BusMessage.fits(count, after: first)
        else { return raised }
        let last = EventCursor(milliseconds: first.milliseconds, sequence: first.sequence + UInt64(count - 1))
        if let raised, raised >= last { return raised }
        do {
            try await raiseLogFloor(to: last)
            return last
        } catch {
            logger.warning(
                "could not raise the replay log floor above the v3 blocks; retrying",
                metadata: ["error": "\(error)", "floor": "\(last)"])
            return raised
        }
    }

    /// How long the subscriber counts must show that every node reads a newer form before
    /// this node writes it. After a Redis failover every node subscribes again, in no set
    /// order: while only current nodes are back, the counts say "all read v3" although an
    /// older node is about to return, and v3 blocks written then would be lost to its clients.
    /// Every node's subscriber retries at least every 2 s (its reconnect backoff's cap), so
    /// once the new primary answers, all are back well within this.
    static let formatRaiseSeconds = 5.0

    /// Newer formats seen in the counts: in how many checks in a row, and the oldest of them.
    struct FormatRaise {
        /// Heartbeat intervals that must pass between the first such check and the raise.
        let checks: Int
        var format: UInt8 = 0
        var seen = 0
    }

    /// Counts the subscribers of the three event channels: a node reads the channels of
    /// every format it knows, so more on the v1 channel than on v2 means a node of a release
    /// before v2, and more on v2 than on v3 one before v3. This node writes the newest form
    /// all of them read until the older node leaves, and moves to a newer one only when the
    /// counts have shown it for `formatRaiseSeconds` (a node that has not counted yet takes
    /// the first count). An older node that joins (a rollback) is noticed within a
    /// heartbeat; pinning the format first closes even that gap (docs/operations.md).
    private func checkForOlderNodes(_ raise: inout FormatRaise) async {
        guard
            let reply = try? await client.send(
                RedisCommand(
                    "PUBSUB", "NUMSUB", RedisArgument(keys.eventChannel), RedisArgument(keys.eventBatchChannel),
                    RedisArgument(keys.eventBlockChannel))),
            let counts = reply.array, counts.count == 6,
            let v1 = counts[1].integer, let v2 = counts[3].integer, let v3 = counts[5].integer
        else { return }
        let readable: UInt8 = v1 > v2 ? 1 : v2 > v3 ? 2 : 3
        let current = clusterFormat.load(ordering: .relaxed)
        var target = readable
        if current != 0, readable > current {
            // The oldest newer form seen in the run: readings of v2 and v3 in turn allow v2.
            raise.format = raise.seen == 0 ? readable : min(raise.format, readable)
            raise.seen += 1
            guard raise.seen > raise.checks else { return }
            target = raise.format
        }
        raise.seen = 0
        guard clusterFormat.exchange(target, ordering: .relaxed) != target else { return }
        let metadata: Logger.Metadata = [
            "v1.subscribers": "\(v1)", "v2.subscribers": "\(v2)", "v3.subscribers": "\(v3)",
        ]
        switch target {
        case 1:
            logger.notice(
                "a node that reads only v1 bus messages is in the cluster; writing v1 until it leaves",
                metadata: metadata)
        case 2:
            logger.notice(
                "a node that reads no v3 bus messages is in the cluster; writing v2 until it leaves", metadata: metadata
            )
        default: logger.notice("every node reads v3 bus messages; writing v3", metadata: metadata)
        }
    }

    // MARK: Health

    package func health() -> EventBusHealth {
        let now = NIODeadline.now().uptimeNanoseconds
        let (subscribedOnce, lastHeartbeat, gapFills, replayed, rejected, held, tipError) = state.withLock {
            (
                $0.subscribedOnce, $0.lastHeartbeatNanos, $0.gapFills, $0.replayed, $0.rejectedMessages, $0.held.count,
                $0.tipError
            )
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
        if !subscribedOnce, let tipError {
            reason = "cannot read the replay log's newest entry yet: \(tipError)"
        } else if !subscribedOnce {
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
