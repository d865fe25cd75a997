/// A node's `/metrics` text, read by series: the `name{labels}` before a line's value.
public struct MetricsExposition: Sendable {
    public let text: String

    public init(text: String) {
        self.text = text
    }

    /// The value of the line whose series is exactly `series`; nil when there is none.
    public func value(_ series: String) -> Double? {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == series { return Double(parts[1]) }
        }
        return nil
    }

    /// Every `# TYPE name type` line.
    public var types: [String: String] {
        var types: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
        }
        return types
    }
}
