import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import JWTKit
import Testing

/// The Airavata scheduler's own HS256 tokens (`user_id`, `is_admin`, `iss`, `aud`, no `sub`,
/// no roles) over a real WebSocket, against a node that requires the scheduler's issuer and
/// audience.
@Suite("Scheduler tokens over WebSockets")
struct SchedulerTokenTests {
    static func token(user: String, admin: Bool, audience: String = "airavata-users") async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: TestGateway.secret), digestAlgorithm: .sha256)
        return try await keys.sign(
            SchedulerClaims(
                user_id: user, username: user, email: "\(user)@example.org", is_admin: admin,
                iss: IssuerClaim(value: "airavata-scheduler"), aud: AudienceClaim(value: [audience]),
                exp: ExpirationClaim(value: Date().addingTimeInterval(600))))
    }

    static func withSchedulerNode(_ body: (TestGateway) async throws -> Void) async throws {
        let node = try await TestGateway.start(
            token: TokenVerifierConfiguration(
                hmacSecret: TestGateway.secret, issuer: "airavata-scheduler", audience: "airavata-users"))
        do {
            try await body(node)
            await node.stop()
        } catch {
            await node.stop()
            throw error
        }
    }

    /// A producer's token from the same issuer, for the same audience.
    static func publish(_ node: TestGateway, _ events: JSONValue) async throws {
        let service = try await node.issuer.token(
            subject: "producer", roles: ["service"], issuer: "airavata-scheduler", audience: "airavata-users")
        let response = try await node.http.publish(json: events.jsonString, token: service)
        try #require(response.status == 202, "publish answered \(response.status): \(response.bodyString)")
    }

    @Test("is_admin: true sees worker events; the same token without it is refused the system stream")
    func adminSeesAdminOnlyEvents() async throws {
        try await Self.withSchedulerNode { node in
            let admin = try await RawWebSocket.connect(
                port: node.port, path: "/ws/system?token=\(try await Self.token(user: "sched-admin", admin: true))")
            defer { admin.close() }
            let connected = try await admin.nextMessage()
            #expect(connected["data"]?["action"]?.stringValue == "connected", "got \(connected.jsonString)")

            let plain = try await RawWebSocket.connect(
                port: node.port, path: "/ws/system?token=\(try await Self.token(user: "sched-user", admin: false))")
            defer { plain.close() }
            let refusal = try await plain.nextMessage(ofType: "error")
            #expect(
                refusal["error"]?.stringValue == "System events require the admin role", "got \(refusal.jsonString)")

            try await Self.publish(node, Events.worker(id: "w-7"))
            try await Self.publish(node, Events.system(note: "end"))
            let worker = try await admin.nextMessage(ofType: "worker_updated")
            #expect(worker["data"]?["worker"]?["id"]?.stringValue == "w-7")
            let sentinel = try await admin.nextMessage(ofType: "system_status")
            #expect(sentinel["data"]?["notice"]?.stringValue == "end", "got \(sentinel.jsonString)")
        }
    }

    @Test("user_id stands for sub: the scheduler user gets their own notifications")
    func userIDIsTheSubject() async throws {
        try await Self.withSchedulerNode { node in
            let socket = try await RawWebSocket.connect(
                port: node.port, path: "/ws/user?token=\(try await Self.token(user: "sched-user", admin: false))")
            defer { socket.close() }
            _ = try await socket.nextMessage()
            try await Self.publish(node, Events.notification(user: "someone-else", title: "not yours"))
            try await Self.publish(node, Events.notification(user: "sched-user", title: "yours"))
            let note = try await socket.nextMessage(ofType: "user_notification")
            #expect(note["data"]?["title"]?.stringValue == "yours", "got \(note.jsonString)")
        }
    }

    @Test("a scheduler token for another audience is refused with 1008")
    func wrongAudience() async throws {
        try await Self.withSchedulerNode { node in
            let token = try await Self.token(user: "sched-admin", admin: true, audience: "airavata-admins")
            let socket = try await RawWebSocket.connect(port: node.port, path: "/ws/system?token=\(token)")
            defer { socket.close() }
            let message = try await socket.nextMessage()
            #expect(message["error"]?.stringValue == "Invalid or expired token", "got \(message.jsonString)")
            #expect(try await socket.expectClose().code == 1008)
        }
    }
}
