import AiravataProtocol
import Foundation
import Testing

@Suite("Timestamps and ids")
struct TimestampTests {
    @Test("ISO 8601 UTC with whole seconds")
    func formatting() {
        #expect(Timestamp.iso8601(unixSeconds: 0) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.iso8601(unixSeconds: 1_705_314_600) == "2024-01-15T10:30:00Z")
        #expect(Timestamp.iso8601(unixSeconds: 951_782_400) == "2000-02-29T00:00:00Z")
        #expect(Timestamp.iso8601(unixSeconds: 4_102_444_799) == "2099-12-31T23:59:59Z")
        #expect(Timestamp.iso8601(unixSeconds: 253_402_300_799) == "9999-12-31T23:59:59Z")
    }

    @Test("agrees with Foundation's ISO 8601 formatter on random instants, 1970 to 9999")
    func agreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let seconds = Int64.random(in: 0...253_402_300_799, using: &generator)
            let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            #expect(Timestamp.iso8601(unixSeconds: seconds) == expected, "\(seconds)")
        }
    }

    @Test("a producer's timestamp is a real UTC instant")
    func validation() {
        let good = [
            "2024-01-15T10:30:00Z", "2024-01-15T10:30:00.123Z", "2024-02-29T23:59:59Z", "2000-02-29T00:00:00Z",
            "1999-12-31T23:59:59.123456789Z", "2024-04-30T00:00:00Z",
        ]
        for text in good {
            #expect(Timestamp.isValidISO8601(text), "expected \(text) to be accepted")
        }
        let bad = [
            "2024-01-15", "2024-01-15 10:30:00Z", "yesterday", "2024-01-15T10:30:00", "2024-01-15T10:30:00.Z",
            "2024-13-45T99:99:99Z", "2024-00-10T10:00:00Z", "2024-01-00T10:00:00Z", "2023-02-29T10:00:00Z",
            "1900-02-29T10:00:00Z", "2024-04-31T10:00:00Z", "2024-01-15T24:00:00Z", "2024-01-15T10:60:00Z",
            "2016-12-31T23:59:60Z", "2024-01-15T10:30:00+02:00", "2024-01-15t10:30:00z",
            "2024-01-15T10:30:00.1234567890Z", "2024-01-15T10:30:00Zjunk", "+024-01-15T10:30:00Z",
        ]
        for text in bad {
            #expect(!Timestamp.isValidISO8601(text), "expected \(text) to be refused")
        }
    }

    @Test("message id formats")
    func ids() {
        #expect(MessageID.experiment("exp-123", unixMillis: 1) == "exp_exp-123_1")
        #expect(MessageID.task("task-456", unixMillis: 2) == "task_task-456_2")
        #expect(MessageID.worker("worker-789", unixMillis: 3) == "worker_worker-789_3")
        #expect(MessageID.system(unixMillis: 4) == "system_4")
        #expect(MessageID.user("u", unixMillis: 5) == "user_u_5")
    }
}
