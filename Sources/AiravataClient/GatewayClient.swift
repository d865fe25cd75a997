public import AiravataProtocol
public import NIOCore
import NIOHTTP1
public import NIOPosix
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
/// Callbacks run on the connection's event loop, one at a time and in arrival order.
public final class GatewayClient: Sendable {
    public struct Configuration: Sendable {
        /// Where to connect; with several, each attempt takes the next (behind a load
        /// balancer there is one).
        public var endpoints: [(host: String, port: Int)]
        /// `/ws`, or a path subscription such as `/ws/experiments/exp-1`.
        public var path: String
        /// Called before every connection attempt, so a refreshed token is picked up.
        public var token: @Sendable () async throws -> String
        /// Resume the session after a reconnect (the default). Off, the client starts a new
        /// session each time and re-subscribes; events sent while it was away are missed.
        public var resume: Bool = true
        public var initialBackoff: Duration = .milliseconds(500)
        public var maximumBackoff: Duration = .seconds(30)
        /// After a server restart (close 1012) the first attempt waits at most this long;
        /// the server already spreads its closes, this only breaks up ties.
        public var restartJitter: Duration = .milliseconds(250)
        /// nil: retry forever.
        public var maximumAttempts: Int?
        /// A connection on which nothing arrives this long (the server pings every 30 s by
        /// default) is presumed dead (a half-open socket after a partition) and replaced.
        /// It also bounds the wait for the upgrade answer. nil: never.
        public var idleTimeout: Duration? = .seconds(75)
        public var group: any EventLoopGroup

        public init(
            host: String,
            port: Int,
            path: String = "/ws",
            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
            token: @escaping @Sendable () async throws -> String
        ) {
            self.endpoints = [(host, port)]
            self.path = path
            self.group = group
            self.token = token
        }

        /// From `ws://host:port/path`.
        public init(
            url: String,
            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
            token: @escaping @Sendable () async throws -> String
        ) throws {
            guard url.hasPrefix("ws://") else { throw GatewayClientError("only ws:// URLs are supported: \(url)") }
            let rest = url.dropFirst("ws://".count)
            let authority = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(authority.count)
            let parts = authority.split(separator: ":", maxSplits: 1)
            guard let host = parts.first.map(String.init), !host.isEmpty else {
                throw GatewayClientError("no host in \(url)")
            }
            let port = parts.count > 1 ? Int(parts[1]) : 80
            guard let port, (1...65535).contains(port) else { throw GatewayClientError("bad port in \(url)") }
            self.init(host: host, port: port, path: path.isEmpty ? "/ws" : String(path), group: group, token: token)
        }
    }

    /// What the client reports.
    public enum Event: Sendable {
        /// A connection was admitted. `resumed`: the session (subscriptions and the events
        /// missed meanwhile) came back.
        case connected(sessionID: String, nodeID: String, resumed: Bool)
        /// An event or any other server message for the application.
        case message(Envelope)
        /// The events missed while away were all replayed.
        case replayComplete(replayed: Int)
        /// Some events missed while away cannot be replayed (`reason` says why): refetch the
        /// state over REST. Live events continue.
        case recoveryFailed(reason: String)
        /// The connection ended; the next attempt starts after `retryIn` (nil: giving up).
        case disconnected(code: UInt16?, reason: String, retryIn: Duration?)
    }

    /// A subscription the client keeps; `resourceID` nil for `system` and the own `user`.
    public struct Subscription: Sendable, Hashable {
        public var resourceType: ResourceType
        public var resourceID: String?

        public init(_ resourceType: ResourceType, _ resourceID: String?) {
            self.resourceType = resourceType
            self.resourceID = resourceID
        }

        var request: JSONValue { message("subscribe") }
        var cancellation: JSONValue { message("unsubscribe") }

        private func message(_ action: String) -> JSONValue {
            var data: JSONObject = ["action": .string(action), "resourceType": .string(resourceType.rawValue)]
            if let resourceID { data["resourceId"] = .string(resourceID) }
            return .object(["type": .string("system_status"), "data": .object(data)])
        }
    }

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
    }

    /// One connection, from dialling to its end.
    private func connectOnce() async throws -> Closed {
        let attempt = state.withLock { state in
            state.attemptAdmitted = false
            state.attempt += 1
            return state.attempt
        }
        let token = try await configuration.token()
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

    fileprivate func admitted(_ channel: any Channel, _ envelope: Envelope) {
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
    fileprivate func refusedBeforeAdmission(_ envelope: Envelope) {
        guard envelope.type == MessageType.error.rawValue, envelope.error == "Session belongs to another user"
        else { return }
        state.withLock { state in
            guard state.resuming else { return }
            state.sessionID = nil
            state.cursor = nil
            state.sessionLost = "session_refused"
        }
    }

    fileprivate func received(_ envelope: Envelope) {
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

    fileprivate static func send(_ value: JSONValue, on channel: any Channel) {
        let bytes = Array(value.jsonString.utf8)
        channel.eventLoop.execute {
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer)
            channel.writeAndFlush(frame, promise: nil)
        }
    }

    fileprivate static func sendClose(on channel: any Channel) {
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

/// Sends the upgrade request; reports a refused upgrade (an HTTP answer instead of 101).
private final class UpgradeRequester: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let host: String
    private let port: Int
    private let target: String
    private let closed: ClosedReport

    init(host: String, port: Int, target: String, closed: ClosedReport) {
        self.host = host
        self.port = port
        self.target = target
        self.closed = closed
    }

    func channelActive(context: ChannelHandlerContext) {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
        head.headers.add(name: "host", value: "\(host):\(port)")
        head.headers.add(name: "content-length", value: "0")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            closed.succeed(
                GatewayClient.Closed(code: nil, reason: "upgrade refused: HTTP \(head.status.code)", admitted: false))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closed.succeed(GatewayClient.Closed(code: nil, reason: "\(error)", admitted: false))
        context.close(promise: nil)
    }
}

/// The WebSocket after the upgrade: answers pings, hands messages to the client and
/// reports how the connection closed.
private final class ClientFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let client: GatewayClient
    private let closed: ClosedReport
    private var admitted = false
    private var fragments: ByteBuffer?

    init(client: GatewayClient, closed: ClosedReport) {
        self.client = client
        self.closed = closed
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            if frame.fin { text(context, frame.unmaskedData) } else { fragments = frame.unmaskedData }
        case .continuation:
            guard var buffer = fragments else { return }
            var more = frame.unmaskedData
            buffer.writeBuffer(&more)
            if frame.fin {
                fragments = nil
                text(context, buffer)
            } else {
                fragments = buffer
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self)
            let reason = payload.readString(length: payload.readableBytes) ?? ""
            closed.succeed(GatewayClient.Closed(code: code, reason: reason, admitted: admitted))
            var echo = context.channel.allocator.buffer(capacity: 2)
            echo.writeInteger(code ?? 1000)
            let reply = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: echo)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in channel.close(promise: nil) }
        default:
            break
        }
    }

    private func text(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        guard let value = try? JSONValue(parsing: Array(buffer.readableBytesView)),
            let envelope = try? Envelope(decoding: value)
        else { return }
        if envelope.type == MessageType.ping.rawValue {
            GatewayClient.send(.object(["type": .string("pong")]), on: context.channel)
            return
        }
        if !admitted, envelope.type == MessageType.systemStatus.rawValue,
            envelope.data?["action"]?.stringValue == "connected"
        {
            admitted = true
            client.admitted(context.channel, envelope)
            return
        }
        if !admitted { client.refusedBeforeAdmission(envelope) }
        client.received(envelope)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed.succeed(GatewayClient.Closed(code: nil, reason: "connection lost", admitted: admitted))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closed.succeed(GatewayClient.Closed(code: nil, reason: "\(error)", admitted: admitted))
        context.close(promise: nil)
    }
}

/// Completes the connection's outcome once, whichever of the handlers notices the end first.
final class ClosedReport: Sendable {
    private let promise: EventLoopPromise<GatewayClient.Closed>
    private let done = Atomic<Bool>(false)

    init(_ promise: EventLoopPromise<GatewayClient.Closed>) {
        self.promise = promise
    }

    var futureResult: EventLoopFuture<GatewayClient.Closed> { promise.futureResult }

    func succeed(_ closed: GatewayClient.Closed) {
        guard done.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        promise.succeed(closed)
    }

    func fail(_ error: any Error) {
        guard done.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        promise.fail(error)
    }
}

/// Ends a connection on which nothing arrived for the idle timeout.
private final class IdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    private let closed: ClosedReport

    init(closed: ClosedReport) {
        self.closed = closed
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            closed.succeed(GatewayClient.Closed(code: nil, reason: "no data from the server", admitted: false))
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
