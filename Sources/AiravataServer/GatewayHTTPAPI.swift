package import AiravataCore
import AiravataProtocol
import Logging
import NIOCore
import NIOHTTP1

/// The plain HTTP endpoints: ingestion, health, readiness, metrics, statistics.
package final class GatewayHTTPAPI: Sendable {
    private let gateway: Gateway
    private let readiness: Readiness
    private let metrics: GatewayMetrics
    private let logger: Logger
    /// `/api/v1/stats` needs no token, so it must not cost Redis a read per request.
    private let statistics: StatisticsCache

    init(
        gateway: Gateway, readiness: Readiness, metrics: GatewayMetrics, statistics: StatisticsCache, logger: Logger
    ) {
        self.gateway = gateway
        self.statistics = statistics
        self.readiness = readiness
        self.metrics = metrics
        self.logger = logger
    }

    static let ingestionPath: Substring = "/api/v1/events"

    func bodyTooLarge() {
        metrics.ingestRejected("too_large")
    }

    func requestTimedOut() {
        metrics.httpRefused(.timeout)
    }

    func requestsFlooded() {
        metrics.httpRefused(.pipelined)
    }

    func malformedRequest() {
        metrics.httpRefused(.malformed)
    }

    func answeredFast() {
        metrics.fastIngestRequest()
    }

    func upgradedFast() {
        metrics.fastUpgrade()
    }

    /// A fast-path answer went to the producer's socket directly.
    func answeredDirectly() {
        metrics.directAnswer()
    }

    func answersUnread() {
        metrics.httpRefused(.unread)
    }

    func upgradeRefused(_ status: HTTPResponseStatus) {
        metrics.httpRefused(.badUpgrade)
    }

    /// A producer's token refused, with the answer it gets.
    struct PublisherRefusal: Error {
        var response: HTTPResponse
    }

    /// A producer whose token this node verified recently: no task, no signature check.
    /// Nil when `authenticatePublisher` must decide (unknown token, or not a producer).
    func recentPublisher(_ headers: HTTPHeaders) -> Principal? {
        recentPublisher(headers, nowMicros: WallClock.nowMicros())?.principal
    }

    /// `recentPublisher`, with until when the answer holds (wall-clock microseconds).
    func recentPublisher(_ headers: HTTPHeaders, nowMicros: Int64) -> (principal: Principal, untilMicros: Int64)? {
        guard let token = WebSocketRoute.bearerToken(headers),
            let trusted = gateway.recentlyAuthenticated(token, nowMicros: nowMicros), trusted.principal.mayPublish
        else { return nil }
        return trusted
    }

    /// The producer a request's token proves, or nil, with nothing counted or answered: the
    /// fast path hands a refused request to the general path, which checks it again, counts
    /// the refusal once and answers it.
    func provenPublisher(_ headers: HTTPHeaders) async -> Principal? {
        guard let token = WebSocketRoute.bearerToken(headers), let principal = try? await gateway.authenticate(token),
            principal.mayPublish
        else { return nil }
        return principal
    }

    /// Checks an ingestion request's bearer token and role, from its head alone.
    func authenticatePublisher(_ headers: HTTPHeaders) async -> Result<Principal, PublisherRefusal> {
        let principal: Principal
        do {
            guard let token = WebSocketRoute.bearerToken(headers) else { throw TokenError.missing }
            principal = try await gateway.authenticate(token)
        } catch {
            metrics.ingestRejected("unauthenticated")
            let message = (error as? TokenError)?.clientMessage ?? "Invalid or expired token"
            var response = HTTPResponse.error(.unauthorized, message)
            response.headers.add(name: "www-authenticate", value: "Bearer")
            return .failure(PublisherRefusal(response: response))
        }
        guard principal.mayPublish else {
            metrics.ingestRejected("forbidden")
            return .failure(
                PublisherRefusal(response: .error(.forbidden, "Publishing events requires the \"service\" role")))
        }
        return .success(principal)
    }

    /// Ingestion is answered on the loop, without a task where the gateway can; every other
    /// endpoint in a task. `answer` runs on `loop`, at once when the answer needs no wait:
    /// a callback rather than a future, because an ingestion request would otherwise make
    /// one more promise and callback on its way out.
    func respond(
        to request: HTTPRequest, on loop: any EventLoop, then answer: @escaping @Sendable (HTTPResponse) -> Void
    ) {
        guard request.method == .POST, request.path == Self.ingestionPath else {
            loop.makeFutureWithTask { await self.respond(to: request) }.whenSuccess(answer)
            return
        }
        // The request handler proves the token on the head, before the body is read.
        guard request.publisher != nil else {
            answer(.error(.unauthorized, "Authentication required"))
            return
        }
        let document: JSONValue
        let dataBytes: [[UInt8]?]
        do {
            // Straight from the request's buffer, without copying the body into an array;
            // each event's `data` is kept as written, when compact, to be passed on as it is.
            (document, dataBytes) = try request.body.withUnsafeReadableBytes { raw throws(JSONParseError) in
                let body = raw.bindMemory(to: UInt8.self)
                let (document, spans) = try JSONValue.parsingEvents(body)
                return (document, spans.map { span in span.map { Array(body[$0]) } })
            }
        } catch {
            metrics.ingestRejected("invalid")
            answer(.error(.badRequest, "Body is not valid JSON: \(error)"))
            return
        }
        gateway.ingest(document, dataBytes: dataBytes, on: loop) { result in
            switch result {
            case .success(let accepted): answer(self.acceptedResponse(accepted))
            case .failure(let error): answer(self.ingestionFailure(error))
            }
        }
    }

    /// Every endpoint but ingestion (see `respond(to:on:then:)`).
    private func respond(to request: HTTPRequest) async -> HTTPResponse {
        switch (request.method, request.path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            return .json(.ok, .object(["status": .string("ok")]))
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            return readinessResponse()
        case (.GET, "/metrics"):
            let resumes = gateway.statistics.resumes
            let replay = gateway.replay.counts
            let statistics = gateway.statistics
            let body = metrics.exposition(
                core: .init(
                    routed: statistics.routed, deliveries: statistics.delivered, activeConnections: statistics.active,
                    latency: statistics.latency, redisRoundTripSeconds: statistics.storeRoundTripSeconds),
                bus: gateway.busHealth(),
                resumes: .init(
                    recovered: resumes.recovered, failed: resumes.failed, logReads: replay.reads,
                    replays: replay.replays))
            return HTTPResponse(
                status: .ok,
                contentType: "text/plain; version=0.0.4; charset=utf-8",
                body: ByteBuffer(bytes: body)
            )
        case (.GET, "/api/v1/stats"):
            return .json(.ok, await statistics.current().json)
        case (.GET, DashboardAPI.pagePath):
            return DashboardAPI.page()
        case (.GET, DashboardAPI.dataPath):
            return await DashboardAPI.data(headers: request.headers, gateway: gateway, statistics: statistics)
        case (.GET, "/"):
            return .json(.ok, index)
        case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"), (_, "/api/v1/stats"), (_, "/api/v1/events"), (_, "/"),
            (_, DashboardAPI.pagePath), (_, DashboardAPI.dataPath):
            var response = HTTPResponse.error(
                .methodNotAllowed, "Method \(request.method.rawValue) is not allowed on \(request.path)")
            // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
            response.headers.add(name: "allow", value: Self.allowedMethods(request.path))
            return response
        default:
            if request.path == "/ws" || request.path.hasPrefix("/ws/") {
                return .error(.upgradeRequired, "This is a WebSocket endpoint; connect with a WebSocket client")
            }
            return .error(.notFound, "No such endpoint: \(request.path)")
        }
    }

    private static func allowedMethods(_ path: Substring) -> String {
        switch path {
        case "/healthz", "/readyz": "GET, HEAD"
        case Self.ingestionPath: "POST"
        default: "GET"
        }
    }

    private var index: JSONValue {
        .object([
            "service": .string("airavata-gateway"),
            "node": .string(gateway.configuration.nodeID),
            "dashboard": .string(String(DashboardAPI.pagePath)),
            "websocket": .array(
                [
                    "/ws/experiments/{id}", "/ws/tasks/{id}", "/ws/projects/{id}", "/ws/workers/{id}", "/ws/user",
                    "/ws/system", "/ws",
                ]
                .map { .string($0) }
            ),
            "http": .array(
                [
                    "POST /api/v1/events", "GET /api/v1/stats", "GET /healthz", "GET /readyz", "GET /metrics",
                    "GET /dashboard", "GET /api/v1/cluster",
                ]
                .map { .string($0) }),
        ])
    }

    private func readinessResponse() -> HTTPResponse {
        switch readiness.current {
        case .ready:
            let health = gateway.busHealth()
            guard health.ready else {
                return .json(
                    .serviceUnavailable,
                    .object([
                        "status": .string("degraded"), "reason": .string(health.reason ?? "event bus unavailable"),
                    ])
                )
            }
            return .json(.ok, .object(["status": .string("ready")]))
        case .starting: return .json(.serviceUnavailable, .object(["status": .string("starting")]))
        case .draining: return .json(.serviceUnavailable, .object(["status": .string("draining")]))
        }
    }

    /// `accepted` counts the events published now; `duplicates` lists the batch positions
    /// whose producer id was accepted before (their cursor is the first acceptance's).
    private func acceptedResponse(_ accepted: [Gateway.Accepted]) -> HTTPResponse {
        var duplicates = 0
        for item in accepted where item.duplicate { duplicates += 1 }
        metrics.eventsIngested(accepted.count - duplicates)
        if duplicates > 0 { metrics.duplicatesIgnored(duplicates) }
        return HTTPResponse(
            status: .accepted, contentType: "application/json", body: ByteBuffer(bytes: Self.acceptedBody(accepted)))
    }

    /// `{"accepted":n,"ids":[…],"cursors":[…],"duplicates":[…]}` and a line feed, as
    /// `HTTPResponse.json` writes it (a test holds the two equal), without building the
    /// JSON value first: this answer goes out once per ingestion request.
    package static func acceptedBody(_ accepted: [Gateway.Accepted]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + accepted.count * 64)
        var duplicates = 0
        for item in accepted where item.duplicate { duplicates += 1 }
        bytes.append(contentsOf: #"{"accepted":"#.utf8)
        bytes.append(contentsOf: String(accepted.count - duplicates).utf8)
        bytes.append(contentsOf: #","ids":["#.utf8)
        for (index, item) in accepted.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONValue.writeString(item.id, into: &bytes)
        }
        bytes.append(contentsOf: #"],"cursors":["#.utf8)
        for (index, item) in accepted.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONValue.writeString(item.cursor, into: &bytes)
        }
        bytes.append(contentsOf: #"],"duplicates":["#.utf8)
        var first = true
        for (index, item) in accepted.enumerated() where item.duplicate {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            bytes.append(contentsOf: String(index).utf8)
        }
        bytes.append(contentsOf: "]}\n".utf8)
        return bytes
    }

    private func ingestionFailure(_ error: any Error) -> HTTPResponse {
        if let error = error as? IngestionError {
            metrics.ingestRejected("invalid")
            return .error(.badRequest, error.description, field: error.field)
        }
        metrics.ingestRejected("unavailable")
        logger.warning("event bus refused events", metadata: ["error": "\(error)"])
        var response = HTTPResponse.error(.serviceUnavailable, "Events cannot be accepted right now; retry")
        response.headers.add(name: "retry-after", value: "1")
        return response
    }
}
