package import Logging

/// Wraps the node's log handler so that nothing a client sent can forge a log line or
/// drive an operator's terminal: control characters, line and paragraph separators and
/// bidirectional overrides in messages and metadata become visible `\u{…}` escapes, and
/// every value is cut to a bounded length.
///
/// It sits at the output, not at each call site, because client strings reach the logs
/// along many paths (token subjects, session ids, resource ids, refusal reasons).
package struct EscapingLogHandler: LogHandler {
    private var inner: any LogHandler

    /// Longest logged value, in characters; longer ones end in `…`.
    package static let maxValueLength = 512

    package init(_ inner: any LogHandler) {
        self.inner = inner
    }

    package var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    package var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues(Self.escape) }
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.escape) }
    }

    package func log(event: LogEvent) {
        var event = event
        event.message = "\(Self.escape(event.message.description))"
        event.metadata = event.metadata?.mapValues(Self.escape)
        inner.log(event: event)
    }

    package static func escape(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(escape(text))
        case .stringConvertible(let convertible): .string(escape(convertible.description))
        case .array(let values): .array(values.map(escape))
        case .dictionary(let values): .dictionary(values.mapValues(escape))
        }
    }

    package static func escape(_ text: String) -> String {
        var needsWork = text.unicodeScalars.count > maxValueLength
        if !needsWork { needsWork = text.unicodeScalars.contains(where: isUnsafe) }
        guard needsWork else { return text }
        var escaped = ""
        for (offset, scalar) in text.unicodeScalars.enumerated() {
            guard offset < maxValueLength else {
                escaped += "…"
                break
            }
            if isUnsafe(scalar) {
                escaped += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    private static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true  // C0 and C1 controls, DEL: newlines, ESC sequences
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional overrides and isolates
        default: false
        }
    }
}
