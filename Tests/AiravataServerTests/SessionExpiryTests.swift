import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Testing

/// `--session-ttl` on a real node, alone and with Redis: a client that comes back within the
/// TTL resumes, one that comes back after it is told `recovery_failed` / `session_expired`.
@Suite("Session TTL expiry", .serialized)
struct SessionExpiryTests {
    static let secret = "session-expiry-secret-that-is-long-enough-0123"
    static let ttlSeconds = 1

    static func open(_ node: GatewayProcess, token: String, query: String = "") async throws
        -> (RawWebSocket, JSONValue)
    {
        let socket = try await RawWebSocket.connect(port: node.port, path: "/ws/user?token=\(token)\(query)")
        return (socket, try await socket.nextMessage())
    }

    @Test("a resume within the TTL succeeds; after it, recovery_failed with session_expired", arguments: [false, true])
    func expiry(withRedis: Bool) async throws {
        let redis = withRedis ? try await RedisServerProcess.start() : nil
        defer { redis?.stop() }
        let node = try GatewayProcess.start(
            arguments: [
                "--session-ttl", "\(Self.ttlSeconds)", "--stats-interval", "0", "--drain-delay", "0",
                "--log-level", "warning",
            ] + (redis.map { ["--redis-url", $0.url] } ?? []),
            environment: ["AIRAVATA_JWT_SECRET": Self.secret])
        defer { node.stop() }
        try await node.waitFor("/readyz", toAnswer: 200)
        let token = try await TokenIssuer(hmacSecret: Self.secret).token(subject: "alice")

        let (first, connected) = try await Self.open(node, token: token)
        let session = try #require(connected["data"]?["sessionId"]?.stringValue)
        let cursor = try #require(connected["cursor"]?.stringValue)
        first.close()
        let resume = "&session=\(session)&cursor=\(cursor)"

        // The positive control: back at once, the session is there.
        let (second, again) = try await Self.open(node, token: token, query: resume)
        #expect(again["data"]?["resumed"] == .bool(true), "a resume within the TTL failed: \(again.jsonString)")
        second.close()

        if let redis {
            // Redis expires the key by itself: wait for that, bounded.
            let gone = await eventually(within: .seconds(10)) {
                (try? await redis.cli("EXISTS", "airavata:session:\(session)")) == "0"
            }
            #expect(gone, "the session key outlived its TTL of \(Self.ttlSeconds) s in Redis")
        } else {
            // Time is the input here: nothing to await but the TTL passing.
            try await Task.sleep(for: .seconds(Self.ttlSeconds) + .milliseconds(1500))
        }

        let (third, late) = try await Self.open(node, token: token, query: resume)
        defer { third.close() }
        #expect(late["data"]?["resumed"] == .bool(false), "resumed after the TTL: \(late.jsonString)")
        #expect(late["data"]?["sessionId"]?.stringValue != session)
        let outcome = try await third.nextMessage()
        #expect(outcome["data"]?["action"]?.stringValue == "recovery_failed", "got \(outcome.jsonString)")
        #expect(outcome["data"]?["reason"]?.stringValue == "session_expired", "got \(outcome.jsonString)")
    }
}
