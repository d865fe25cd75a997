import AiravataProtocol
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// The official Swift client: one logical connection to the gateway that survives server
/// restarts and network blips.
///
/// It reconnects with capped exponential backoff and jitter (without a limit on attempts,
/// unless configured), resumes its session from the last cursor it saw so that no event is
/// lost or repeated across the reconnect, and keeps track of its explicit subscriptions so
/// that it can restore them itself when the session could not be resumed.
///
/// A token the server refuses before admission (close code 1008) would be refused forever:
/// the token function is asked once more, and if it returns the same token, or the fresh one
/// is refused too, the client stops and reports `disconnected` with `retryIn: nil`.
///
/// Callbacks run on the connection's event loop, one at a time and in arrival order.
public final class GatewayClient: Sendable {
    private struct State {
        var sessionID: String?
        var cursor: String?
        var subscriptions: Set<Subscription> = []
        var channel: (any Channel)?
        /// The connection being set up, before the server admitted it.
        var dialing: (any Channel)?
        var stopped = false
        var started = false
        var runner: Task<Void, Never>?
        var attemptAdmitted = false
        var attempt = 0
        var everAdmitted = false
        /// Whether this attempt asked to resume.
        var resuming = false
        /// Why the next admission cannot resume (reported as `recoveryFailed`).
        var sessionLost: String?
        /// The token of the attempt under way.
        var attemptToken: String?
        /// This attempt's refusal was about the session (another user's), not the token.
        var attemptSessionRefused = false
        /// A token the server refused at the door (1008 before admission), kept while the
        /// token function gets its one chance to bring a fresh one.
        var refusedToken: String?
    }

    private let configuration: Configuration
    private let onEvent: @Sendable (Event) -> Void
    private let state = Mutex(State())

    public init(configuration: Configuration, onEvent: @escaping @Sendable (Event) -> Void) {
        self.configuration = configuration
        self.onEvent = onEvent
    }

    /// The session and the last cursor seen: what a resume would send.
    public var session: (id: String?, cursor: String?) {
        state.withLock { ($0.sessionID, $0.cursor) }
    }

    public var subscriptions: Set<Subscription> {
        state.withLock { $0.subscriptions }
    }

    /// Starts connecting; returns at once.
    public func start() {
        let task = Task { await self.run() }
        state.withLock { state in
            guard !state.started else {
                task.cancel()
                return
            }
            state.started = true
            state.runner = task
        }
    }

    /// Closes the connection and stops reconnecting.
    public func stop() async {
        let (channel, dialing, runner) = state.withLock { state in
            state.stopped = true
            return (state.channel, state.dialing, state.runner)
        }
        if let channel { Self.sendClose(on: channel) }
        // Not admitted yet: nothing to say goodbye to, just hang up.
        dialing?.close(promise: nil)
        runner?.cancel()
        await runner?.value
    }

    /// Subscribes now if connected, and after every reconnect that does not resume.
    public func subscribe(_ subscription: Subscription) {
        let channel = state.withLock { state -> (any Channel)? in
            state.subscriptions.insert(subscription)
            return state.channel
        }
        if let channel { Self.send(subscription.request, on: channel) }
    }

    public func unsubscribe(_ subscription: Subscription) {
        let channel = state.withLock { state -> (any Channel)? in
            state.subscriptions.remove(subscription)
            return state.channel
        }
        if let channel { Self.send(subscription.cancellation, on: channel) }
    }

    // MARK: Connection loop

    private func run() async {
        var attempts = 0
        var delay = configuration.initialBackoff
        while !Task.isCancelled, !state.withLock({ $0.stopped }) {
            attempts += 1
            var outcome = Closed(code: nil, reason: "connection failed", admitted: false)
            do {
                outcome = try await connectOnce()
            } catch {
                outcome.reason = "\(error)"
            }
            if state.withLock({ $0.stopped }) { break }
            if outcome.final || refusedForGood(outcome) {
                onEvent(.disconnected(code: outcome.code, reason: outcome.reason, retryIn: nil))
                break
            }
            if outcome.admitted {
                attempts = 0
                delay = configuration.initialBackoff
            }
            var wait: Duration
            if outcome.code == 1012 {
                // The server is restarting and asked us to come back: no reason to wait long.
                wait = configuration.restartJitter * Double.random(in: 0...1)
            } else {
                wait = min(delay, configuration.maximumBackoff) * Double.random(in: 0.5...1)
                delay = min(delay * 2, configuration.maximumBackoff)
            }
            if let maximum = configuration.maximumAttempts, attempts >= maximum {
                onEvent(.disconnected(code: outcome.code, reason: outcome.reason, retryIn: nil))
                break
            }
            onEvent(.disconnected(code: outcome.code, reason: outcome.reason, retryIn: wait))
            if wait > .zero { try? await Task.sleep(for: wait) }
        }
    }

    struct Closed: Sendable {
        var code: UInt16?
        var reason: String
        var admitted: Bool
        /// Nothing to retry: the client stops.
        var final = false
    }

    /// The policy-violation close: refused at the door (a bad or expired token, or a path the
    /// token may not see).
    static let policyViolation: UInt16 = 1008

    /// Whether a refusal at the door ends the client. The token function gets one chance to
    /// bring a new token; a second refusal, whatever the token, is final. A refused session
    /// (another user's) is not the token's fault: the next attempt starts afresh instead.
    private func refusedForGood(_ outcome: Closed) -> Bool {
        guard outcome.code == Self.policyViolation, !outcome.admitted else { return false }
        return state.withLock { state in
            if state.attemptSessionRefused { return false }
            if state.refusedToken != nil { return true }
            state.refusedToken = state.attemptToken
            return false
        }
    }

    /// One connection, from dialling to its end.
    private func connectOnce() async throws -> Closed {
        let attempt = state.withLock { state in
            state.attemptAdmitted = false
            state.attempt += 1
            return state.attempt
        }
        let token = try await configuration.token()
        let repeated = state.withLock { state in
            state.attemptToken = token
            state.attemptSessionRefused = false
            return state.refusedToken == token
        }
        if repeated {
            // Dialling would only hear the same refusal.
            return Closed(
                code: Self.policyViolation,
                reason: "token refused, and the token function returned the same token again",
                admitted: false, final: true)
        }
        var query = "token=\(Self.percentEncoded(token))"
        let resume = configuration.resume
        let (sessionID, cursor) = state.withLock { state in
            state.resuming = resume && state.sessionID != nil
            return (state.sessionID, state.cursor)
        }
        if resume, let sessionID {
            query += "&session=\(Self.percentEncoded(sessionID))"
            if let cursor { query += "&cursor=\(Self.percentEncoded(cursor))" }
        }
        let separator = configuration.path.contains("?") ? "&" : "?"
        let target = "\(configuration.path)\(separator)\(query)"
        let closed = ClosedReport(configuration.group.next().makePromise(of: Closed.self))
        let (host, port) = configuration.endpoints[(attempt - 1) % max(configuration.endpoints.count, 1)]
        let bootstrap = ClientBootstrap(group: configuration.group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { [self] channel in
                let idle = configuration.idleTimeout.map { TimeAmount.nanoseconds(Int64($0 / .nanoseconds(1))) }
                let requester = UpgradeRequester(host: host, port: port, target: target, closed: closed)
                let upgrader = NIOWebSocketClientUpgrader(
                    maxFrameSize: 1 << 24,
                    automaticErrorHandling: true,
                    upgradePipelineHandler: { [self] channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                ClientFrameHandler(client: self, closed: closed))
                        }
                    }
                )
                return channel.eventLoop.makeCompletedFuture {
                    if let idle {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(IdleCloser(closed: closed))
                    }
                    // Forward, not drop, what follows the 101 in the same read: a proxy may send
                    // the server's first message (`connected`) in one packet with the answer.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                context.pipeline.removeHandler(requester, promise: nil)
                            }
                        )
                    )
                    try channel.pipeline.syncOperations.addHandler(requester)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            closed.fail(error)
            throw error
        }
        channel.closeFuture.whenComplete { _ in
            closed.succeed(Closed(code: nil, reason: "connection lost", admitted: false))
        }
        let stopping = state.withLock { state -> Bool in
            state.dialing = channel
            return state.stopped
        }
        if stopping { channel.close(promise: nil) }
        var result = try await closed.futureResult.get()
        result.admitted = state.withLock { $0.attemptAdmitted }
        channel.close(promise: nil)
        state.withLock { state in
            if state.channel === channel { state.channel = nil }
            if state.dialing === channel { state.dialing = nil }
        }
        return result
    }

    // MARK: Inbound, on the event loop

    func admitted(_ channel: any Channel, _ envelope: Envelope) {
        let data = envelope.data
        let resumed = data?["resumed"] == .bool(true)
        let sessionID = data?["sessionId"]?.stringValue ?? ""
        // Whatever the server restored, compare with what we want and fill the difference.
        var restored = Set<Subscription>()
        for item in data?["subscriptions"]?.arrayValue ?? [] {
            guard let type = item["resourceType"]?.stringValue.flatMap(ResourceType.init(rawValue:)) else { continue }
            let id = item["resourceId"]?.stringValue
            restored.insert(Subscription(type, id))
        }
        let path = pathSubscription
        let (missing, unwanted, lost, stopping) = state.withLock {
            state -> ([Subscription], [Subscription], String?, Bool) in
            // A reconnect that did not resume has lost what was sent meanwhile: say so, once.
            let lost = state.everAdmitted && !state.resuming ? state.sessionLost ?? "resume_disabled" : nil
            state.sessionLost = nil
            state.everAdmitted = true
            state.channel = channel
            state.dialing = nil
            state.attemptAdmitted = true
            state.refusedToken = nil
            state.sessionID = sessionID
            if let cursor = envelope.cursor { state.cursor = cursor }
            let missing = state.subscriptions.filter { wanted in
                !restored.contains(wanted)
                    && !(wanted.resourceID == nil && restored.contains { $0.resourceType == wanted.resourceType })
            }
            // Dropped while we were away, but the session still had it: drop it now.
            let unwanted = restored.filter { held in
                guard !state.subscriptions.contains(held) else { return false }
                if let path, path.resourceType == held.resourceType,
                    path.resourceID == nil || path.resourceID == held.resourceID
                {
                    return false
                }
                return !state.subscriptions.contains { $0.resourceID == nil && $0.resourceType == held.resourceType }
            }
            return (Array(missing), Array(unwanted), lost, state.stopped)
        }
        if stopping {
            Self.sendClose(on: channel)
            return
        }
        onEvent(.connected(sessionID: sessionID, nodeID: data?["nodeId"]?.stringValue ?? "", resumed: resumed))
        if let lost { onEvent(.recoveryFailed(reason: lost)) }
        for subscription in missing { Self.send(subscription.request, on: channel) }
        for subscription in unwanted { Self.send(subscription.cancellation, on: channel) }
    }

    /// The subscription the URL path makes (`/ws/experiments/E` → experiment E), if any.
    private var pathSubscription: Subscription? {
        let segments = configuration.path.split(separator: "?").first?.split(separator: "/").map(String.init) ?? []
        guard segments.first == "ws", segments.count >= 2 else { return nil }
        switch (segments[1], segments.count) {
        case ("user", 2): return Subscription(.user, nil)
        case ("system", 2): return Subscription(.system, nil)
        case (_, 3):
            let types: [String: ResourceType] = [
                "experiments": .experiment, "tasks": .task, "projects": .project, "workers": .worker,
            ]
            guard let type = types[segments[1]] else { return nil }
            return Subscription(type, segments[2])
        default: return nil
        }
    }

    /// An error before admission that names the session: it was refused (another user's),
    /// and retrying it would be refused forever, so start afresh.
    func refusedBeforeAdmission(_ envelope: Envelope) {
        guard envelope.type == MessageType.error.rawValue, envelope.error == "Session belongs to another user"
        else { return }
        state.withLock { state in
            guard state.resuming else { return }
            state.attemptSessionRefused = true
            state.sessionID = nil
            state.cursor = nil
            state.sessionLost = "session_refused"
        }
    }

    func received(_ envelope: Envelope) {
        if let cursor = envelope.cursor {
            state.withLock { $0.cursor = cursor }
        }
        if envelope.type == MessageType.systemStatus.rawValue, let action = envelope.data?["action"]?.stringValue {
            switch action {
            case "replay_complete":
                let count = envelope.data?["replayed"].flatMap { value -> Int? in
                    if case .number(let text) = value { return Int(text) }
                    return nil
                }
                onEvent(.replayComplete(replayed: count ?? 0))
                return
            case "recovery_failed":
                onEvent(.recoveryFailed(reason: envelope.data?["reason"]?.stringValue ?? "unknown"))
                return
            default:
                break
            }
        }
        onEvent(.message(envelope))
    }

    // MARK: Outbound helpers

    static func send(_ value: JSONValue, on channel: any Channel) {
        let bytes = Array(value.jsonString.utf8)
        channel.eventLoop.execute {
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer)
            channel.writeAndFlush(frame, promise: nil)
        }
    }

    static func sendClose(on channel: any Channel) {
        channel.eventLoop.execute {
            var buffer = channel.allocator.buffer(capacity: 2)
            buffer.write(webSocketErrorCode: .normalClosure)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: buffer)
            channel.writeAndFlush(frame).whenComplete { _ in
                channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
            }
        }
    }

    private static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }
}
