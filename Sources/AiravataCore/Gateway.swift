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
    private let sessions: any SessionStore
    /// Reads the replay log for resuming clients.
    package let replay: ReplayReader
    /// The session of every open connection, renewed while it stays open.
    private let openSessions = Mutex<[ConnectionID: String]>([:])

    package init(
        configuration: GatewayConfiguration,
        verifier: TokenVerifier,
        bus: any EventBus,
        ownership: any OwnershipIndex,
        limiter: any ConnectionLimiter,
        frames: any FrameEncoding = PlainJSONFrames(),
        statisticsStore: any StatisticsStore = LocalStatisticsStore(),
        sessions: any SessionStore = InMemorySessionStore(ttlSeconds: 300),
        logger: Logger
    ) {
        self.frames = frames
        self.sessions = sessions
        self.replay = ReplayReader(bus: bus, frames: frames, recentCapacity: configuration.replayMemory)

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
        package let sessionID: String
    }

    /// What a client asks for when it reconnects: its session back, and the events after
    /// the last cursor it saw.
    package struct ResumeRequest: Sendable, Equatable {
        package var sessionID: String
        package var cursor: String?

        package init(sessionID: String, cursor: String?) {
            self.sessionID = sessionID
            self.cursor = cursor
        }
    }

    /// An admitted connection and what to tell it first.
    package struct Opening: Sendable {
        package let admission: Admission
        /// In order, before anything else: `connected`, then for a resume the replayed events
        /// and the resume's outcome.
        package let greeting: [ByteBuffer]
        /// The client has seen, or is not owed, every event up to this cursor: later deliveries
        /// at or below it are dropped, which is what keeps the replay/live seam free of
        /// duplicates.
        package let highWater: EventCursor?
    }

    /// Authenticates, restores a session when asked, authorises the subscriptions, applies
    /// the limits and registers the connection. On success, events start flowing to `sink`.
    package func admit(
        token: String?,
        ip: String,
        pathSubscription: ClientMessage.SubscriptionRequest?,
        resume: ResumeRequest? = nil,
        sink: any ConnectionSink
    ) async -> Result<Opening, ConnectionRefusal> {
        let principal: Principal
        do {
            principal = try await verifier.verify(token)
        } catch {
            return .failure(.authentication(error))
        }
        var restored: SessionRecord?
        if let resume {
            if Self.isWellFormedSessionID(resume.sessionID) {
                do {
                    restored = try await sessions.load(resume.sessionID)
                } catch {
                    logger.error("session store unavailable", metadata: ["error": "\(error)"])
                    return .failure(.unavailable("Service temporarily unavailable"))
                }
            }
            if let restored, restored.userID != principal.userID {
                logger.notice(
                    "refused to resume another user's session",
                    metadata: ["user.id": "\(principal.userID)", "session.id": "\(resume.sessionID)"])
                return .failure(.forbidden("Session belongs to another user"))
            }
        }
        var keys: [SubscriptionKey] = []
        var pathKey: SubscriptionKey?
        if let pathSubscription {
            switch Authorization.subscribe(pathSubscription, principal: principal) {
            case .allowed(let allowed):
                pathKey = allowed
                keys.append(allowed)
            case .refused(let reason): return .failure(.forbidden(reason))
            }
        }
        for key in restored?.subscriptions ?? [] where !keys.contains(key) {
            // Re-checked: the token that resumes may carry fewer claims than the one that subscribed.
            guard case .allowed = Authorization.subscribe(key.request, principal: principal) else { continue }
            guard keys.count < configuration.maxSubscriptionsPerConnection else { break }
            keys.append(key)
        }
        let replayFrom = restored != nil ? resume?.cursor : nil
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
        let sessionID = restored != nil ? resume?.sessionID ?? Self.newSessionID() : Self.newSessionID()
        index.add(id, sink: sink, principal: principal)
        for key in keys {
            _ = index.subscribe(id, to: key, limit: configuration.maxSubscriptionsPerConnection)
        }
        openSessions.withLock { $0[id] = sessionID }
        statistics.connectionOpened()
        // A new client's history starts here. Read after registering: every later event is
        // delivered live, and live events at or below this cursor are dropped (they precede
        // the start), so none falls between "before the start" and "delivered".
        var start: EventCursor?
        if replayFrom == nil {
            do {
                start = try await currentTip()
            } catch {
                logger.error("replay log unavailable", metadata: ["error": "\(error)"])
                index.remove(id)
                openSessions.withLock { _ = $0.removeValue(forKey: id) }
                statistics.connectionClosed()
                await limiter.release(lease)
                return .failure(.unavailable("Service temporarily unavailable"))
            }
        }
        await persist(sessionID, SessionRecord(userID: principal.userID, subscriptions: keys))
        let admission = Admission(
            id: id, principal: principal, lease: lease, subscription: pathKey, sessionID: sessionID)

        var connected = control(
            .systemStatus,
            prefix: "system",
            data: .object([
                "action": .string("connected"),
                "sessionId": .string(sessionID),
                "nodeId": .string(configuration.nodeID),
                "resumed": .bool(restored != nil),
                "subscriptions": .array(keys.map { .object($0.json) }),
            ])
        )
        connected.cursor = start?.description
        var greeting = [frame(connected)]
        var highWater = start
        if let resume, restored == nil {
            greeting.append(frame(resumeOutcome("recovery_failed", reason: "session_expired", cursor: start)))
            statistics.resumed(recovered: false)
            logger.debug("resume of an unknown or expired session", metadata: ["session.id": "\(resume.sessionID)"])
        } else if let replayFrom {
            let (frames, mark) = await replayFrames(after: replayFrom, keys: Set(keys), principal: principal)
            greeting += frames
            highWater = mark
        }
        return .success(Opening(admission: admission, greeting: greeting, highWater: highWater))
    }

    /// The replayed events this connection is owed, and the outcome message after them.
    private func replayFrames(
        after text: String,
        keys: Set<SubscriptionKey>,
        principal: Principal
    ) async -> ([ByteBuffer], EventCursor?) {
        var failure = "cursor_out_of_window"
        if let cursor = EventCursor(text) {
            do {
                switch try await replay.replay(after: cursor) {
                case .recovered(let events, let end):
                    let owed = events.filter { replayed in
                        let routing = replayed.routing
                        guard routing.isBroadcast || routing.keys.contains(where: keys.contains) else { return false }
                        return Authorization.mayReceive(routing, principal: principal)
                    }
                    // More than a client can take in one go: it refetches instead.
                    guard owed.count <= configuration.maxReplayEvents else {
                        statistics.resumed(recovered: false)
                        return ([frame(resumeOutcome("recovery_failed", reason: "replay_too_large", cursor: end))], end)
                    }
                    var done = resumeOutcome("replay_complete", reason: nil, cursor: end)
                    if case .object(var data)? = done.data {
                        data["replayed"] = .number(String(owed.count))
                        done.data = .object(data)
                    }
                    statistics.resumed(recovered: true)
                    return (owed.map(\.frame) + [frame(done)], end)
                case .outOfWindow:
                    break
                }
            } catch {
                logger.warning("replay log read failed", metadata: ["error": "\(error)"])
                failure = "replay_unavailable"
            }
        } else {
            failure = "invalid_cursor"
        }
        statistics.resumed(recovered: false)
        // Live events continue from the log's end; the client refetches what it missed.
        let tip = try? await currentTip()
        return ([frame(resumeOutcome("recovery_failed", reason: failure, cursor: tip))], tip)
    }

    private func resumeOutcome(_ action: String, reason: String?, cursor: EventCursor?) -> Envelope {
        var data: JSONObject = ["action": .string(action)]
        if let reason { data["reason"] = .string(reason) }
        var envelope = control(.systemStatus, prefix: "system", data: .object(data))
        envelope.cursor = cursor?.description
        return envelope
    }

    private func currentTip() async throws -> EventCursor {
        if let routed = replay.newestRemembered { return routed }
        return try await bus.logTip()
    }

    @discardableResult
    private func persist(_ sessionID: String, _ record: SessionRecord) async -> Bool {
        do {
            try await sessions.save(sessionID, record)
            return true
        } catch {
            // The connection works on; only a later resume would miss this change.
            logger.warning(
                "could not save the session; a resume would restore an older state",
                metadata: ["session.id": "\(sessionID)", "error": "\(error)"])
            return false
        }
    }

    /// Keeps the sessions of open connections from expiring.
    package func renewSessions() async {
        let ids = openSessions.withLock { Array($0.values) }
        guard !ids.isEmpty else { return }
        do {
            try await sessions.renew(ids)
        } catch {
            logger.warning("could not renew sessions", metadata: ["error": "\(error)", "count": "\(ids.count)"])
        }
    }

    /// 128 random bits, hex: unguessable, and safe in a Redis key and a URL.
    package static func newSessionID() -> String {
        var generator = SystemRandomNumberGenerator()
        return [generator.next(), generator.next() as UInt64]
            .map { word in
                let hex = String(word, radix: 16)
                return String(repeating: "0", count: 16 - hex.count) + hex
            }
            .joined()
    }

    package static func isWellFormedSessionID(_ text: String) -> Bool {
        (8...128).contains(text.utf8.count)
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: "_")
            }
    }

    package func disconnect(_ admission: Admission) async {
        index.remove(admission.id)
        openSessions.withLock { _ = $0.removeValue(forKey: admission.id) }
        statistics.connectionClosed()
        // The session's time to live counts from now.
        do {
            try await sessions.renew([admission.sessionID])
        } catch {
            logger.debug("could not renew a closed connection's session", metadata: ["error": "\(error)"])
        }
        await limiter.release(admission.lease)
    }

    // MARK: Subscriptions

    /// Handles a subscribe request and returns the reply for the client. The session is
    /// saved before the subscription takes effect, so a confirmed subscription survives a
    /// reconnect to any node.
    package func subscribe(_ request: ClientMessage.SubscriptionRequest, for admission: Admission) async -> Envelope {
        switch Authorization.subscribe(request, principal: admission.principal) {
        case .refused(let reason):
            return subscriptionError(reason, action: "subscribe", request: request)
        case .allowed(let key):
            let current = index.subscriptions(of: admission.id)
            if !current.contains(key) {
                guard current.count < configuration.maxSubscriptionsPerConnection else {
                    return subscriptionError(
                        "Subscription limit reached: at most \(configuration.maxSubscriptionsPerConnection) per connection",
                        action: "subscribe",
                        request: request
                    )
                }
                // A confirmed subscription must survive a reconnect: unsaved, it is refused.
                let saved = await persist(
                    admission.sessionID,
                    SessionRecord(userID: admission.principal.userID, subscriptions: Array(current) + [key]))
                guard saved else {
                    return subscriptionError(
                        "Service temporarily unavailable: the subscription could not be saved", action: "subscribe",
                        request: request)
                }
            }
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

    package func unsubscribe(_ request: ClientMessage.SubscriptionRequest, for admission: Admission) async -> Envelope {
        let key: SubscriptionKey
        switch request.resourceType {
        case .user: key = SubscriptionKey(.user, request.resourceID ?? admission.principal.userID)
        case .system: key = .system
        default: key = SubscriptionKey(request.resourceType, request.resourceID ?? "")
        }
        if index.unsubscribe(admission.id, from: key) {
            let remaining = Array(index.subscriptions(of: admission.id))
            await persist(
                admission.sessionID, SessionRecord(userID: admission.principal.userID, subscriptions: remaining))
        }
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
        dispatch(frames.frame(envelope.encoded()), cursor: nil, to: index.allSinks())
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
        if let cursor = delivered.cursor {
            // Before the lookup: a connection registered after this point has this cursor as
            // its start (or finds the event in the replay memory), and drops the event should
            // it still reach it live.
            replay.remember(.init(cursor: cursor, routing: routing, frame: frame))
        }
        let sinks = index.recipients(of: routing) { Authorization.mayReceive(routing, principal: $0) }
        dispatch(frame, cursor: delivered.cursor, to: sinks)
        statistics.eventRouted(latencyMicros: WallClock.nowMicros() - event.acceptedAtMicros, recipients: sinks.count)
    }

    /// One task per event loop per event instead of one per connection; each loop's
    /// queue is FIFO, so per-connection order follows the order of `dispatch` calls.
    private func dispatch(_ frame: ByteBuffer, cursor: EventCursor?, to sinks: [any ConnectionSink]) {
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
                for sink in members { sink.deliver(frame, cursor: cursor) }
            }
        }
    }
}
