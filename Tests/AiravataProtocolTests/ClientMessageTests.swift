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
