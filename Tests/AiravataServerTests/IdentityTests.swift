import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Testing

/// Two users whose ids differ only in Unicode normal form: "café" precomposed (NFC, U+00E9)
/// and decomposed (NFD, e + U+0301). Swift's `String` calls them equal; the gateway must not.
@Suite("Identities compare as bytes, end to end")
struct IdentityTests {
    static let nfc = "caf\u{E9}"
    static let nfd = "cafe\u{301}"

    /// The next message that is not a heartbeat.
    static func nextEvent(_ socket: RawWebSocket) async throws -> JSONValue {
        while true {
            let message = try await socket.nextMessage()
            if message["type"]?.stringValue != "ping" { return message }
        }
    }

    @Test("the NFD user's /ws/user connection gets none of the NFC user's events")
    func events() async throws {
        try await TestGateway.with { node in
            let owner = try await node.connect("/ws/user", user: Self.nfc)
            defer { owner.close() }
            let lookalike = try await node.connect("/ws/user", user: Self.nfd)
            defer { lookalike.close() }
            try await node.publish(
                .array([
                    Events.experiment(id: "exp-nfc", project: "proj-nfc", owner: Self.nfc),
                    Events.notification(user: Self.nfc, title: "for the NFC user"),
                    Events.notification(user: Self.nfd, title: "for the NFD user"),
                ]))

            let first = try await Self.nextEvent(owner)
            #expect(first["data"]?["experiment"]?["id"]?.stringValue == "exp-nfc", "owner got \(first.jsonString)")
            let second = try await Self.nextEvent(owner)
            #expect(second["data"]?["title"]?.stringValue == "for the NFC user", "owner got \(second.jsonString)")

            // Events reach a connection in order, so the NFD user's own notification coming
            // first proves the two before it were not delivered.
            let received = try await Self.nextEvent(lookalike)
            #expect(
                received["data"]?["title"]?.stringValue == "for the NFD user",
                "expected the NFD user's first event to be its own notification, got \(received.jsonString)")
        }
    }

    @Test("the NFD user cannot resume the NFC user's session")
    func resume() async throws {
        try await TestGateway.with { node in
            let (owner, connected) = try await ResumeTests.open(node, "/ws/user", user: Self.nfc)
            let session = try #require(connected["data"]?["sessionId"]?.stringValue)
            let cursor = try #require(connected["cursor"]?.stringValue)
            owner.close()
            let (lookalike, reply) = try await ResumeTests.open(
                node, "/ws", user: Self.nfd, query: "&session=\(session)&cursor=\(cursor)")
            defer { lookalike.close() }
            #expect(reply["type"]?.stringValue == "error", "expected a refusal, got \(reply.jsonString)")
            #expect(reply["error"]?.stringValue == "Session belongs to another user")
            #expect(try await lookalike.expectClose().code == 1008)
        }
    }

    @Test("a projects claim in another spelling does not grant the project")
    func projects() async throws {
        try await TestGateway.with { node in
            // U+212A KELVIN SIGN is canonically equivalent to the ASCII K of "p-K".
            let socket = try await node.connect("/ws", user: Self.nfd, projects: ["p-\u{212A}", Self.nfd])
            defer { socket.close() }
            let kelvin = try await node.subscribe(socket, "project", "p-K")
            #expect(kelvin["type"]?.stringValue == "error", "expected a refusal, got \(kelvin.jsonString)")
            #expect(kelvin["error"]?.stringValue == "Not authorized for project p-K")
            // Project ids are ASCII (docs/protocol.md, "Identifiers"), so no spelling of café is one.
            let cafe = try await node.subscribe(socket, "project", Self.nfc)
            #expect(cafe["type"]?.stringValue == "error", "expected a refusal, got \(cafe.jsonString)")
            #expect(cafe["error"]?.stringValue?.hasPrefix("Invalid subscription request: resourceId") == true)

            let path = try await node.token(Self.nfd, projects: ["p-\u{212A}"])
            let viaPath = try await RawWebSocket.connect(port: node.port, path: "/ws/projects/p-K?token=\(path)")
            defer { viaPath.close() }
            let refusal = try await viaPath.nextMessage()
            #expect(refusal["error"]?.stringValue == "Not authorized for project p-K", "got \(refusal.jsonString)")
            #expect(try await viaPath.expectClose().code == 1008)
        }
    }
}
