import AiravataCore
import AiravataProtocol
import Foundation
import Testing

@Suite("Producer input and token claims are held to the rules")
struct InputRulesTests {
    static let secret = "unit-test-secret-with-at-least-32-bytes!!"

    func validate(_ text: String) throws -> [EventValidator.Candidate] {
        try EventValidator().validate(try JSONValue(parsing: text))
    }

    func refusal(_ text: String) throws -> IngestionError? {
        do {
            let accepted = try validate(text)
            Issue.record("expected a refusal, \(accepted.count) event(s) were accepted from \(text.prefix(160))")
            return nil
        } catch let error as IngestionError {
            return error
        }
    }

    @Test("a system_status carrying one of the gateway's control actions is refused at data.action")
    func controlActions() throws {
        for action in ControlAction.allCases {
            let error = try refusal(#"{"type":"system_status","data":{"action":"\#(action.rawValue)"}}"#)
            #expect(error?.field == "data.action", "\(action.rawValue): got \(String(describing: error))")
        }
        let batch = try refusal(
            #"[{"type":"system_status","data":{}},{"type":"system_status","data":{"action":"recovery_failed"}}]"#)
        #expect(batch?.field == "[1].data.action")
        // Anything else a producer says in system_status is its own business.
        #expect(try validate(#"{"type":"system_status","data":{"action":"maintenance","level":"info"}}"#).count == 1)
        #expect(try validate(#"{"type":"system_status","data":{"healthy":true}}"#).count == 1)
    }

    @Test("a supplied timestamp must be a real UTC instant")
    func timestamps() throws {
        for bad in ["2024-13-45T99:99:99Z", "2023-02-29T00:00:00Z", "2024-01-15T10:30:00+02:00"] {
            let error = try refusal(#"{"type":"system_status","data":{},"timestamp":"\#(bad)"}"#)
            #expect(error?.field == "timestamp", "\(bad): got \(String(describing: error))")
        }
        let good = try validate(#"{"type":"system_status","data":{},"timestamp":"2024-02-29T10:30:00.5Z"}"#)
        #expect(good.first?.timestamp == "2024-02-29T10:30:00.5Z")
    }

    @Test("resource and user ids in events follow the identifier rules")
    func eventIDs() throws {
        let long = String(repeating: "e", count: Identifier.maximumResourceIDBytes + 1)
        let cases: [(String, String)] = [
            (#"{"type":"experiment_created","data":{"experiment":{"id":"\#(long)"}}}"#, "data.experiment.id"),
            (#"{"type":"experiment_progress","data":{"experimentId":"exp 1"}}"#, "data.experimentId"),
            (
                #"{"type":"experiment_updated","data":{"experiment":{"id":"e","projectId":"p/1"}}}"#,
                "data.experiment.projectId"
            ),
            (
                #"{"type":"experiment_updated","data":{"experiment":{"id":"e","ownerId":"a\u0007"}}}"#,
                "data.experiment.ownerId"
            ),
            (#"{"type":"task_progress","data":{"taskId":"t\u00e9"}}"#, "data.taskId"),
            (#"{"type":"task_created","data":{"task":{"id":"t","experimentId":"?"}}}"#, "data.task.experimentId"),
            (#"{"type":"worker_offline","data":{"worker":{"id":"w\\x"}}}"#, "data.worker.id"),
            (#"{"type":"user_notification","data":{"userId":"u\n"}}"#, "data.userId"),
            (#"{"type":"task_updated","data":{"task":{"id":"t"}},"routing":{"projectId":"p 2"}}"#, "routing.projectId"),
        ]
        for (text, field) in cases {
            let error = try refusal(text)
            #expect(error?.field == field, "expected a refusal at \(field), got \(String(describing: error))")
        }
        let fine = try validate(
            #"{"type":"experiment_created","data":{"experiment":{"id":"exp-123","projectId":"proj-789","ownerId":"caf\u00e9"}}}"#
        )
        #expect(fine.first?.routing.ownerID == "caf\u{E9}")
    }

    @Test("a token issued in the future beyond the leeway is refused")
    func issuedInTheFuture() async throws {
        let verifier = try await TokenVerifier(configuration: .init(hmacSecret: Self.secret, leewaySeconds: 30))
        let issuer = await TokenIssuer(hmacSecret: Self.secret)
        let future = try await issuer.token(subject: "alice", now: Date().addingTimeInterval(600))
        await #expect(throws: TokenError.invalid(reason: "issued in the future")) { try await verifier.verify(future) }
        let skewed = try await issuer.token(subject: "alice", now: Date().addingTimeInterval(10))
        #expect(try await verifier.verify(skewed).userID == "alice", "a clock 10 s ahead is within the leeway")
    }

    @Test("user ids from tokens are held to the identifier rules")
    func claimRules() async throws {
        let verifier = try await TokenVerifier(configuration: .init(hmacSecret: Self.secret))
        let issuer = await TokenIssuer(hmacSecret: Self.secret)
        for subject in ["a\nb", "\u{0}", String(repeating: "u", count: Identifier.maximumUserIDBytes + 1)] {
            let token = try await issuer.token(subject: subject)
            await #expect(throws: TokenError.self, "subject \(subject.debugDescription.prefix(40))") {
                try await verifier.verify(token)
            }
        }
        let unicode = try await issuer.token(subject: "cafe\u{301}", projects: ["p-1"])
        let principal = try await verifier.verify(unicode)
        #expect(principal.userID.utf8.elementsEqual("cafe\u{301}".utf8), "the subject is kept byte for byte")
    }
}
