package import AiravataProtocol
package import Logging
package import NIOCore
import Synchronization

/// The coordinating type of a node: admits connections, keeps their subscriptions,
/// accepts producers' events and routes what the bus delivers to local connections.
package final class Gateway: Sendable {
    package typealias ConnectionID = SubscriptionIndex.ConnectionID

    package let configuration: GatewayConfiguration
    package let statistics: GatewayStatistics
    package let index = SubscriptionIndex()
    private let verifier: TokenVerifier
    private let bus: any EventBus
    private let ownership: any OwnershipIndex
    private let limiter: any ConnectionLimiter
    private let validator: EventValidator
    private let ids = EventIDGenerator()
    private let connectionSequence = Atomic<UInt64>(0)
    private let controlSequence = Atomic<Int>(0)
    private let logger: Logger
    private let frames: any FrameEncoding
    private let statisticsStore: any StatisticsStore

    package init(
        configuration: GatewayConfiguration,
        verifier: TokenVerifier,
        bus: any EventBus,
        ownership: any OwnershipIndex,
        limiter: any ConnectionLimiter,
        frames: any FrameEncoding = PlainJSONFrames(),
        statisticsStore: any StatisticsStore = LocalStatisticsStore(),
        logger: Logger
    ) {
        self.frames = frames
        self.statisticsStore = statisticsStore
        self.configuration = configuration
        self.statistics = GatewayStatistics(nodeID: configuration.nodeID)
        self.verifier = verifier
        self.bus = bus
        self.ownership = ownership
        self.limiter = limiter
        self.validator = EventValidator(maximumBatchSize: configuration.maximumBatchSize)
        self.logger = logger
    }

    /// Runs the bus's delivery until cancelled.
    package func run() async throws {
        try await bus.run { [self] delivered in
            self.route(delivered)
        }
    }

    // MARK: Authentication

    package func authenticate(_ token: String?) async throws(TokenError) -> Principal {
        try await verifier.verify(token)
    }

    // MARK: Connections

    /// A connection that passed every check and is registered for delivery.
    package struct Admission: Sendable {
        package let id: ConnectionID
        package let principal: Principal
        package let lease: ConnectionLease
        package let subscription: SubscriptionKey?
    }

    /// Authenticates, authorises the path subscription, applies the limits and registers
    /// the connection. On success, events start flowing to `sink`.
    package func admit(
        token: String?,
        ip: String,
        pathSubscription: ClientMessage.SubscriptionRequest?,
        sink: any ConnectionSink
    ) async -> Result<Admission, ConnectionRefusal> {
        let principal: Principal
        do {
            principal = try await verifier.verify(token)
        } catch {
            return .failure(.authentication(error))
        }
        var key: SubscriptionKey?
        if let pathSubscription {
            switch Authorization.subscribe(pathSubscription, principal: principal) {
            case .allowed(let allowed): key = allowed
            case .refused(let reason): return .failure(.forbidden(reason))
            }
        }
        let id = connectionSequence.add(1, ordering: .relaxed).newValue
        let lease = ConnectionLease(id: id, userID: principal.userID, ip: ip)
        do {
            if case .failure(let exceeded) = try await limiter.admit(lease) {
                return .failure(.limit(exceeded))
            }
        } catch {
            logger.error("connection limiter unavailable", metadata: ["error": "\(error)"])
            return .failure(.unavailable("Service temporarily unavailable"))
        }
        index.add(id, sink: sink, principal: principal)
        if let key {
            _ = index.subscribe(id, to: key, limit: configuration.maxSubscriptionsPerConnection)
        }
        statistics.connectionOpened()
        return .success(Admission(id: id, principal: principal, lease: lease, subscription: key))
    }

    package func disconnect(_ admission: Admission) async {
        index.remove(admission.id)
        statistics.connectionClosed()
        await limiter.release(admission.lease)
    }

    // MARK: Subscriptions

    /// Handles a subscribe request and returns the reply for the client.
    package func subscribe(_ request: ClientMessage.SubscriptionRequest, for admission: Admission) -> Envelope {
        switch Authorization.subscribe(request, principal: admission.principal) {
        case .refused(let reason):
            return subscriptionError(reason, action: "subscribe", request: request)
        case .allowed(let key):
            switch index.subscribe(admission.id, to: key, limit: configuration.maxSubscriptionsPerConnection) {
            case .added, .alreadySubscribed:
                return subscriptionReply(action: "subscribed", key: key)
            case .limitReached:
                return subscriptionError(
                    "Subscription limit reached: at most \(configuration.maxSubscriptionsPerConnection) per connection",
                    action: "subscribe",
                    request: request
                )
            case .unknownConnection:
                return subscriptionError("Connection is closing", action: "subscribe", request: request)
            }
        }
    }

    package func unsubscribe(_ request: ClientMessage.SubscriptionRequest, for admission: Admission) -> Envelope {
        let key: SubscriptionKey
        switch request.resourceType {
        case .user: key = SubscriptionKey(.user, request.resourceID ?? admission.principal.userID)
        case .system: key = .system
        default: key = SubscriptionKey(request.resourceType, request.resourceID ?? "")
        }
        _ = index.unsubscribe(admission.id, from: key)
        return subscriptionReply(action: "unsubscribed", key: key)
    }

    private func subscriptionReply(action: String, key: SubscriptionKey) -> Envelope {
        var data: JSONObject = ["action": .string(action), "resourceType": .string(key.resource.rawValue)]
        if key.resource != .system { data["resourceId"] = .string(key.id) }
        data["status"] = .string("success")
        return control(.systemStatus, prefix: "sub-response", data: .object(data))
    }

    private func subscriptionError(
        _ reason: String,
        action: String,
        request: ClientMessage.SubscriptionRequest
    ) -> Envelope {
        var data: JSONObject = ["action": .string(action), "resourceType": .string(request.resourceType.rawValue)]
        if let id = request.resourceID { data["resourceId"] = .string(id) }
        data["status"] = .string("error")
        var envelope = control(.error, prefix: "error", data: .object(data))
        envelope.error = reason
        return envelope
    }

    // MARK: Server-originated messages

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
        let now = WallClock.nowMicros()
        return Envelope(
            type: .systemStatus,
            id: MessageID.system(unixMillis: now / 1000),
            timestamp: Timestamp.iso8601(unixSeconds: now / 1_000_000),
            data: await clusterStatistics().json
        )
    }

    /// Publishes this node's figures where the other nodes read them.
    package func reportStatistics() async {
        do {
            try await statisticsStore.publish(statistics.report())
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
        dispatch(frames.frame(envelope.encoded()), to: index.allSinks())
    }

    // MARK: Ingestion

    package struct Accepted: Sendable, Equatable {
        package var id: String
        package var cursor: String
    }

    /// Validates a producer's document, completes ids, timestamps and routing, and hands
    /// the events to the bus. Either every event is accepted or none is.
    package func ingest(_ document: JSONValue) async throws -> [Accepted] {
        let candidates = try validator.validate(document)
        let now = WallClock.nowMicros()
        for candidate in candidates where candidate.routing.category == .experiment {
            let routing = candidate.routing
            guard let experimentID = routing.experimentID, routing.projectID != nil || routing.ownerID != nil else {
                continue
            }
            try await ownership.record(
                experimentID: experimentID,
                ownership: ExperimentOwnership(projectID: routing.projectID, ownerID: routing.ownerID)
            )
        }
        let unknown = candidates.compactMap { candidate -> String? in
            let routing = candidate.routing
            guard routing.category == .experiment || routing.category == .task,
                routing.projectID == nil || routing.ownerID == nil
            else { return nil }
            return routing.experimentID
        }
        let known = unknown.isEmpty ? [:] : try await ownership.lookup(experimentIDs: Array(Set(unknown)))
        let events = candidates.map { candidate in
            var routing = candidate.routing
            if let experimentID = routing.experimentID, let owner = known[experimentID] {
                routing.projectID = routing.projectID ?? owner.projectID
                routing.ownerID = routing.ownerID ?? owner.ownerID
            }
            return GatewayEvent(
                type: candidate.type,
                id: candidate.id ?? ids.id(for: candidate.type, routing: routing, nowMicros: now),
                timestamp: candidate.timestamp ?? Timestamp.iso8601(unixSeconds: now / 1_000_000),
                data: candidate.data,
                routing: routing,
                acceptedAtMicros: now
            )
        }
        let cursors = try await bus.publish(events)
        statistics.eventsAccepted(events.count)
        return zip(events, cursors).map { Accepted(id: $0.id, cursor: $1) }
    }

    // MARK: Delivery

    /// The bus's sink: encodes the frame once and hands it to each entitled connection.
    package func route(_ delivered: DeliveredEvent) {
        let event = delivered.event
        let routing = event.routing
        let frame = frames.frame(event.envelope(cursor: delivered.cursor).encoded())
        let sinks = index.recipients(of: routing) { Authorization.mayReceive(routing, principal: $0) }
        dispatch(frame, to: sinks)
        statistics.eventRouted(latencyMicros: WallClock.nowMicros() - event.acceptedAtMicros, recipients: sinks.count)
    }

    /// One task per event loop per event instead of one per connection; each loop's
    /// queue is FIFO, so per-connection order follows the order of `dispatch` calls.
    private func dispatch(_ frame: ByteBuffer, to sinks: [any ConnectionSink]) {
        guard !sinks.isEmpty else { return }
        var groups: [(loop: any EventLoop, sinks: [any ConnectionSink])] = []
        for sink in sinks {
            let loop = sink.eventLoop
            if let position = groups.firstIndex(where: { $0.loop === loop }) {
                groups[position].sinks.append(sink)
            } else {
                groups.append((loop, [sink]))
            }
        }
        for group in groups {
            let members = group.sinks
            group.loop.execute {
                for sink in members { sink.deliver(frame) }
            }
        }
    }
}
