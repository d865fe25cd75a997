import AiravataProtocol
import Testing

@Suite("Timestamps and ids")
struct TimestampTests {
    @Test("ISO 8601 UTC with whole seconds")
    func formatting() {
        #expect(Timestamp.iso8601(unixSeconds: 0) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.iso8601(unixSeconds: 1_705_314_600) == "2024-01-15T10:30:00Z")
        #expect(Timestamp.iso8601(unixSeconds: 951_782_400) == "2000-02-29T00:00:00Z")
        #expect(Timestamp.iso8601(unixSeconds: 4_102_444_799) == "2099-12-31T23:59:59Z")
    }

    @Test("validation of producer timestamps")
    func validation() {
        for good in ["2024-01-15T10:30:00Z", "2024-01-15T10:30:00.123Z", "2024-01-15T10:30:00+02:00"] {
            #expect(Timestamp.isValidISO8601(good), "\(good)")
        }
        for bad in ["2024-01-15", "2024-01-15 10:30:00Z", "yesterday", "2024-01-15T10:30:00", "2024-01-15T10:30:00.Z"] {
            #expect(!Timestamp.isValidISO8601(bad), "\(bad)")
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
