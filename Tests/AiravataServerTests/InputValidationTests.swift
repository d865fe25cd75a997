import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataTestSupport
import Foundation
import Testing

/// Producer and client input that breaks the rules of docs/protocol.md gets a clear refusal
/// and never reaches a client.
@Suite("Input validation over the wire")
struct InputValidationTests {
    static func post(_ node: TestGateway, _ body: String) async throws -> (status: Int, body: JSONValue) {
        let response = try await IngestionTests.post(node, body: body, token: try await node.serviceToken())
        return (Int(response.status), try JSONValue(parsing: response.bodyString))
    }

    @Test("a producer cannot publish the gateway's control actions; clients never see the forgery")
    func forgedControlAction() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            for action in ["recovery_failed", "connected", "replay_complete", "subscribed", "reconnect"] {
                let forged = #"{"type":"system_status","data":{"action":"\#(action)","reason":"forged"}}"#
                let answer = try await Self.post(node, forged)
                #expect(answer.status == 400, "\(action): expected 400, got \(answer.status) \(answer.body.jsonString)")
                #expect(answer.body["field"]?.stringValue == "data.action", "\(action): \(answer.body.jsonString)")
            }
            try await node.publish(Events.system(note: "genuine"))
            let next = try await socket.nextMessage()
            #expect(
                next["data"]?["notice"]?.stringValue == "genuine",
                "expected the genuine broadcast to be the first message, got \(next.jsonString)")
        }
    }

    @Test("a timestamp that is not a real UTC instant is refused at timestamp")
    func badTimestamp() async throws {
        try await TestGateway.with { node in
            for stamp in ["2024-13-45T99:99:99Z", "2023-02-29T12:00:00Z", "2024-01-15T10:30:60Z"] {
                let body = #"{"type":"system_status","data":{},"timestamp":"\#(stamp)"}"#
                let answer = try await Self.post(node, body)
                #expect(answer.status == 400, "\(stamp): expected 400, got \(answer.status)")
                #expect(answer.body["field"]?.stringValue == "timestamp", "\(stamp): \(answer.body.jsonString)")
            }
            let good = try await Self.post(
                node, #"{"type":"system_status","data":{},"timestamp":"2024-02-29T12:00:00Z"}"#)
            #expect(good.status == 202, "a leap day is a real date: \(good.body.jsonString)")
        }
    }

    @Test("a producer's event id is bounded in length and characters")
    func eventIDs() async throws {
        try await TestGateway.with { node in
            let long = String(repeating: "e", count: Identifier.maximumEventIDBytes + 1)
            for id in [long, "evt\\n1", "évt-1", "a b"] {
                let body = #"{"type":"system_status","data":{},"id":"\#(id)"}"#
                let answer = try await Self.post(node, body)
                #expect(answer.status == 400, "id \(id.prefix(20)): expected 400, got \(answer.status)")
                #expect(answer.body["field"]?.stringValue == "id", "\(answer.body.jsonString)")
            }
            let good = try await Self.post(node, #"{"type":"system_status","data":{},"id":"evt-2024.01_x"}"#)
            #expect(good.status == 202, "\(good.body.jsonString)")
        }
    }

    @Test("resource ids over the bound are refused in messages, paths and events")
    func resourceIDs() async throws {
        try await TestGateway.with { node in
            let long = String(repeating: "x", count: Identifier.maximumResourceIDBytes + 1)
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            for (type, id) in [("experiment", long), ("task", "t 1"), ("worker", "w/1")] {
                let reply = try await node.subscribe(socket, type, id)
                #expect(reply["type"]?.stringValue == "error", "\(type) \(id.prefix(20)): \(reply.jsonString)")
                #expect(
                    reply["error"]?.stringValue?.hasPrefix("Invalid subscription request: resourceId must be") == true,
                    "got \(reply.jsonString.prefix(300))")
            }
            let atLimit = String(repeating: "x", count: Identifier.maximumResourceIDBytes)
            #expect(
                try await node.subscribe(socket, "experiment", atLimit)["data"]?["status"]?.stringValue == "success")

            let token = try await node.token("alice")
            let viaPath = try await RawWebSocket.connect(
                port: node.port, path: "/ws/experiments/\(long)?token=\(token)")
            defer { viaPath.close() }
            let refusal = try await viaPath.nextMessage()
            #expect(
                refusal["error"]?.stringValue?.hasPrefix("Invalid subscription request: resourceId must be") == true,
                "got \(refusal.jsonString.prefix(300))")
            #expect(try await viaPath.expectClose().code == 1008)

            let event = Events.experiment(id: long, project: "p", owner: "alice").jsonString
            let answer = try await Self.post(node, event)
            #expect(answer.status == 400)
            #expect(answer.body["field"]?.stringValue == "data.experiment.id", "\(answer.body.jsonString)")
        }
    }

    @Test("duplicate member names are refused from producers and clients")
    func duplicateNames() async throws {
        try await TestGateway.with { node in
            let answer = try await Self.post(node, #"{"type":"system_status","type":"user_notification","data":{}}"#)
            #expect(answer.status == 400, "expected 400, got \(answer.status) \(answer.body.jsonString)")
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            try await socket.send(#"{"type":"ping","type":"system_status"}"#)
            let reply = try await socket.nextMessage()
            #expect(reply["error"]?.stringValue == "Invalid message format", "got \(reply.jsonString)")
        }
    }

    @Test("a token issued in the future is refused at connect")
    func futureToken() async throws {
        try await TestGateway.with { node in
            let token = try await node.issuer.token(subject: "alice", now: Date().addingTimeInterval(3600))
            let socket = try await RawWebSocket.connect(port: node.port, path: "/ws?token=\(token)")
            defer { socket.close() }
            let refusal = try await socket.nextMessage()
            #expect(refusal["error"]?.stringValue == "Invalid or expired token", "got \(refusal.jsonString)")
            #expect(try await socket.expectClose().code == 1008)
        }
    }
}
