import ArgumentParser
import Foundation

/// Reads one setting from its flag, else from its environment variable, else the default,
/// and turns a malformed value into an error that names its source.
struct SettingValue {
    let flag: String
    let raw: String?
    let source: String

    init(flag: String, value: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.flag = flag
        if let value {
            self.raw = value
            self.source = "--\(flag)"
        } else {
            let variable = Self.environmentName(flag)
            self.raw = environment[variable].flatMap { $0.isEmpty ? nil : $0 }
            self.source = variable
        }
    }

    static func environmentName(_ flag: String) -> String {
        "AIRAVATA_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    func string() -> String? { raw }

    func integer(default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw else { return fallback }
        guard let value = Int(raw), range.contains(value) else {
            throw ValidationError(
                "\(source): expected a whole number from \(range.lowerBound) to \(range.upperBound), got '\(raw)'")
        }
        return value
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    func boolean(default fallback: Bool) throws -> Bool {
        guard let raw else { return fallback }
        switch raw.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ValidationError("\(source): expected true or false, got '\(raw)'")
        }
    }

    func number(default fallback: Double, minimum: Double = 0) throws -> Double {
        guard let raw else { return fallback }
        guard let value = Double(raw), value.isFinite, value >= minimum else {
            throw ValidationError("\(source): expected a number ≥ \(minimum), got '\(raw)'")
        }
        return value
    }

    /// Plain seconds (`2`, `0.5`) or with a unit: `500ms`, `2s`, `1m`, `1h`.
    func duration(default fallback: Double, minimum: Double = 0) throws -> Double {
        guard let raw else { return fallback }
        guard let seconds = Self.parseDuration(raw), seconds >= minimum else {
            throw ValidationError(
                "\(source): expected a duration such as 30, 500ms, 2s or 1m (at least \(minimum)s), got '\(raw)'"
            )
        }
        return seconds
    }

    static func parseDuration(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value.isFinite else { return nil }
            return value * scale
        }
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// Reads the file a path setting names.
    func fileContents() throws -> String? {
        guard let raw else { return nil }
        do {
            return try String(contentsOfFile: raw, encoding: .utf8)
        } catch {
            throw ValidationError("\(source): cannot read '\(raw)': \(error.localizedDescription)")
        }
    }
}
