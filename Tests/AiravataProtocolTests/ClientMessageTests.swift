import AiravataProtocol
import Testing

@Suite("Client messages")
struct ClientMessageTests {
    func parse(_ text: String) throws(ClientMessage.ParseError) -> ClientMessage {
        let bytes = Array(text.utf8)
        let result: Result<ClientMessage, ClientMessage.ParseError> = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(ClientMessage.ParseError) -> ClientMessage in try ClientMessage(parsing: buffer) }
        }
        return try result.get()
    }

    @Test("the protocol's subscribe and unsubscribe requests")
    func subscriptions() throws {
        let subscribe = try parse(
            #"{"type":"system_status","data":{"action":"subscribe","resourceType":"experiment","resourceId":"exp-123"}}"#
        )
        #expect(subscribe == .subscribe(.init(resourceType: .experiment, resourceID: "exp-123")))
        let unsubscribe = try parse(
            #"{"type":"system_status","data":{"action":"unsubscribe","resourceType":"project","resourceId":"p"}}"#
        )
        #expect(unsubscribe == .unsubscribe(.init(resourceType: .project, resourceID: "p")))
        #expect(
            try parse(#"{"type":"system_status","data":{"action":"subscribe","resourceType":"user"}}"#)
                == .subscribe(.init(resourceType: .user, resourceID: nil)))
    }

    @Test("ping, pong and status requests")
    func control() throws {
        #expect(try parse(#"{"type":"ping","id":"ping-1","timestamp":"2024-01-15T10:30:00Z"}"#) == .ping(id: "ping-1"))
        #expect(try parse(#"{"type":"pong","id":"pong-1"}"#) == .pong)
        #expect(try parse(#"{"type":"system_status"}"#) == .statusRequest)
        #expect(try parse(#"{"type":"system_status","data":{}}"#) == .statusRequest)
    }

    @Test("errors carry the protocol's texts")
    func errors() {
        #expect(throws: ClientMessage.ParseError.invalidFormat) { try parse("nope") }
        #expect(throws: ClientMessage.ParseError.invalidFormat) { try parse(#"{"id":"x"}"#) }
        #expect(throws: ClientMessage.ParseError.unknownType) { try parse(#"{"type":"warp"}"#) }
        #expect(ClientMessage.ParseError.invalidFormat.message == "Invalid message format")
        #expect(ClientMessage.ParseError.unknownType.message == "Unknown message type")
        #expect(throws: ClientMessage.ParseError.self) {
            try parse(#"{"type":"system_status","data":{"action":"subscribe","resourceType":"task"}}"#)
        }
    }

    @Test("a resourceId outside the identifier rules is an invalid subscription request")
    func resourceIDRules() throws {
        func request(_ action: String, _ type: String, _ id: String) -> String {
            #"{"type":"system_status","data":{"action":"\#(action)","resourceType":"\#(type)","resourceId":"\#(id)"}}"#
        }
        let long = String(repeating: "x", count: Identifier.maximumResourceIDBytes + 1)
        for text in [
            request("subscribe", "experiment", long), request("unsubscribe", "task", "t 1"),
            request("subscribe", "project", "p/1"), request("subscribe", "worker", "w\\u0000"),
            request("subscribe", "user", String(repeating: "u", count: Identifier.maximumUserIDBytes + 1)),
            request("subscribe", "user", "a\\nb"),
        ] {
            do {
                let message = try parse(text)
                Issue.record("expected an invalid subscription request, got \(message) for \(text.prefix(120))")
            } catch {
                #expect(error.message.hasPrefix("Invalid subscription request: resourceId must be"), "got \(error)")
            }
        }
        let atLimit = String(repeating: "x", count: Identifier.maximumResourceIDBytes)
        #expect(
            try parse(request("subscribe", "experiment", atLimit))
                == .subscribe(.init(resourceType: .experiment, resourceID: atLimit)))
        #expect(
            try parse(request("subscribe", "user", "caf\\u00e9"))
                == .subscribe(.init(resourceType: .user, resourceID: "caf\u{E9}")))
    }

    @Test("the envelope is written in the protocol's field order")
    func envelopeEncoding() throws {
        var envelope = Envelope(type: .error, id: "error-1", timestamp: "2024-01-15T10:30:00Z")
        envelope.error = "Invalid message format"
        let text = String(decoding: envelope.encoded(), as: UTF8.self)
        #expect(
            text
                == #"{"type":"error","id":"error-1","timestamp":"2024-01-15T10:30:00Z","error":"Invalid message format"}"#
        )
        let decoded = try Envelope(decoding: try JSONValue(parsing: text))
        #expect(decoded == envelope)
    }
}
