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
    let verifier: TokenVerifier
    let bus: any EventBus
    let ownership: any OwnershipIndex
    let limiter: any ConnectionLimiter
    let validator: EventValidator
    let ids = EventIDGenerator()
    let connectionSequence = Atomic<UInt64>(0)
    /// Connections admitted on this node, checked against `limits.perNode` before the
    /// cluster-wide limiter is asked.
    private let nodeConnections = Atomic<Int>(0)
    let controlSequence = Atomic<Int>(0)
    let logger: Logger
    let frames: any FrameEncoding
    let statisticsStore: any StatisticsStore
    let sessions: any SessionStore
    /// Reads the replay log for resuming clients.
    package let replay: ReplayReader
    /// The session of every open connection, renewed while it stays open.
    let openSessions = Mutex<[ConnectionID: SessionHandle]>([:])

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
        self.replay = ReplayReader(bus: bus, recentCapacity: configuration.replayMemory)

        self.statisticsStore = statisticsStore
        self.configuration = configuration
        self.statistics = GatewayStatistics(nodeID: configuration.nodeID)
        self.verifier = verifier
        self.bus = bus
        self.ownership = ownership
        self.limiter = limiter
        self.validator = EventValidator(maximumBatchSize: configuration.maximumBatchSize)
        self.logger = logger
        // After the replay reader's own handler (registered as it was made), which forgets.
        bus.onLogReset { [weak self] position in self?.logRewound(position: position) }
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

    /// The principal of a token this node verified recently and that is still valid, and
    /// until when (wall-clock microseconds) that holds; nil means `authenticate` must decide.
    package func recentlyAuthenticated(_ token: String, nowMicros: Int64) -> (
        principal: Principal, untilMicros: Int64
    )? {
        verifier.recentlyVerified(token, nowMicros: nowMicros)
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
            if let restored, !principal.isUser(restored.userID) {
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
        // A path subscription on top of a full restored session must not push it past the bound.
        while keys.count > 1, !SessionRecord(userID: principal.userID, subscriptions: keys).fitsInStore {
            keys.removeLast()
        }
        let replayFrom = restored != nil ? resume?.cursor : nil
        let id = connectionSequence.add(1, ordering: .relaxed).newValue
        let lease = ConnectionLease(id: id, userID: principal.userID, ip: ip)
        let perNode = configuration.limits.perNode
        if nodeConnections.add(1, ordering: .relaxed).newValue > perNode, perNode > 0 {
            nodeConnections.subtract(1, ordering: .relaxed)
            return .failure(.limit(.perNode(limit: perNode)))
        }
        let sessionID = restored != nil ? resume?.sessionID ?? Self.newSessionID() : Self.newSessionID()
        let record = SessionRecord(userID: principal.userID, subscriptions: keys)
        // Saved with the admission where the stores allow (one round trip), else after it.
        var saveAttempted = false
        do {
            let opening = OpeningSession(
                id: sessionID, record: record, sessionsPerUser: configuration.maxSessionsPerUser, store: sessions)
            let joint = record.fitsInStore ? try await limiter.admit(lease, opening: opening) : nil
            let refusal: ConnectionLimitExceeded?
            switch joint {
            case .admitted(let saveFailure)?:
                saveAttempted = true
                refusal = nil
                if let saveFailure { logSessionNotSaved(sessionID, error: saveFailure) }
            case .refused(let exceeded)?:
                refusal = exceeded
            case nil:
                if case .failure(let exceeded) = try await limiter.admit(lease) {
                    refusal = exceeded
                } else {
                    refusal = nil
                }
            }
            if let refusal {
                nodeConnections.subtract(1, ordering: .relaxed)
                return .failure(.limit(refusal))
            }
        } catch {
            nodeConnections.subtract(1, ordering: .relaxed)
            logger.error("connection limiter unavailable", metadata: ["error": "\(error)"])
            return .failure(.unavailable("Service temporarily unavailable"))
        }
        index.add(id, sink: sink, principal: principal)
        for key in keys {
            _ = index.subscribe(id, to: key, limit: configuration.maxSubscriptionsPerConnection)
        }
        openSessions.withLock { $0[id] = SessionHandle(id: sessionID, userID: principal.userID) }
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
                await unregister(id, lease: lease)
                return .failure(.unavailable("Service temporarily unavailable"))
            }
        }
        if !saveAttempted { await persist(sessionID, record) }
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

    package func disconnect(_ admission: Admission) async {
        await unregister(admission.id, lease: admission.lease)
        // The session's time to live counts from now.
        do {
            try await sessions.renew([SessionHandle(id: admission.sessionID, userID: admission.principal.userID)])
        } catch {
            logger.debug("could not renew a closed connection's session", metadata: ["error": "\(error)"])
        }
    }

    /// Undoes a registration: delivery, session renewal, counts and the limiter's lease.
    private func unregister(_ id: ConnectionID, lease: ConnectionLease) async {
        index.remove(id)
        openSessions.withLock { _ = $0.removeValue(forKey: id) }
        statistics.connectionClosed()
        nodeConnections.subtract(1, ordering: .relaxed)
        await limiter.release(lease)
    }

    // MARK: Delivery

    /// The bus's sink: finds the recipients, and only if there are any frames the event,
    /// once for all of them. A node with no interested connection does no more than the
    /// lookup and a note in the replay memory.
    package func route(_ delivered: DeliveredEvent) {
        let event = delivered.event
        let routing = event.routing
        if let cursor = delivered.cursor {
            // Before the lookup: a connection registered after this point has this cursor as
            // its start (or finds the event in the replay memory), and drops the event should
            // it still reach it live.
            replay.remember(.init(cursor: cursor, event: event))
        }
        let groups = index.recipientsByLoop(of: routing) { Authorization.mayReceive(routing, principal: $0) }
        var recipients = 0
        if !groups.isEmpty {
            dispatch(frames.frame(event, cursor: delivered.cursor), cursor: delivered.cursor, to: groups)
            for group in groups { recipients += group.sinks.count }
        }
        statistics.eventRouted(latencyMicros: WallClock.nowMicros() - event.acceptedAtMicros, recipients: recipients)
    }

    /// One task per event loop with a recipient; each loop's queue is FIFO, so
    /// per-connection order follows the order of `dispatch` calls.
    func dispatch(_ frame: ByteBuffer, cursor: EventCursor?, to groups: [SubscriptionIndex.LoopGroup]) {
        for group in groups {
            let members = group.sinks
            members[0].eventLoop.execute {
                for sink in members { sink.deliver(frame, cursor: cursor) }
            }
        }
    }
}
