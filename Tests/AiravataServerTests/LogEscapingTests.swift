import AiravataServer
import Logging
import Synchronization
import Testing

@Suite("Client strings cannot forge log lines")
struct LogEscapingTests {
    /// Keeps what reaches the output, after the escaping handler.
    struct Capture: LogHandler {
        let sink: Sink
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = (metadata.merging(event.metadata ?? [:]) { $1 }).sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value)" }
            sink.lines.withLock { $0.append(([event.message.description] + fields).joined(separator: " ")) }
        }
    }

    final class Sink: Sendable {
        let lines = Mutex<[String]>([])
    }

    @Test("newlines, escape sequences and bidi overrides in messages and metadata become visible escapes")
    func escapes() throws {
        let sink = Sink()
        var logger = Logger(label: "test") { _ in EscapingLogHandler(Capture(sink: sink)) }
        logger[metadataKey: "user.id"] = "mallory\n2026-12-05T00:00:00Z critical : forged"
        logger.info(
            "websocket refused\r\nforged",
            metadata: ["reason": "\u{1B}[31mred\u{202E}txt", "ids": .array(["a\u{0}b"]), "n": "\(42)"])
        let lines = sink.lines.withLock { $0 }
        #expect(lines.count == 1)
        let line = lines.first
        #expect(line?.contains("\n") == false, "a raw newline reached the log: \(lines)")
        #expect(line?.contains("\r") == false)
        #expect(line?.contains("\u{1B}") == false)
        #expect(line?.contains("\u{202E}") == false)
        #expect(line?.contains("mallory\\u{a}2026") == true, "\(lines)")
        #expect(line?.contains("websocket refused\\u{d}\\u{a}forged") == true, "\(lines)")
        #expect(line?.unicodeScalars.contains("\u{0}") == false, "\(lines)")
        #expect(line?.contains("n=42") == true, "plain values pass unchanged: \(lines)")
    }

    @Test("a huge value is cut to the bound")
    func bounded() {
        let long = String(repeating: "x", count: 100_000)
        let escaped = EscapingLogHandler.escape(long)
        #expect(escaped.count == EscapingLogHandler.maxValueLength + 1)
        #expect(escaped.hasSuffix("…"))
        #expect(EscapingLogHandler.escape("café ✓") == "café ✓", "ordinary Unicode is left alone")
    }
}
