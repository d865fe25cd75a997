/// ISO 8601 timestamps in UTC with whole seconds, the form the protocol's examples use
/// (`2024-01-15T10:30:00Z`). Hand-written because Foundation's formatters are slow and
/// this runs once per event.
public enum Timestamp {
    public static func iso8601(unixSeconds: Int64) -> String {
        let days = floorDivide(unixSeconds, 86_400)
        let secondsOfDay = unixSeconds - days * 86_400
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        let hour = secondsOfDay / 3600
        let minute = (secondsOfDay % 3600) / 60
        let second = secondsOfDay % 60
        guard (0...9999).contains(year) else {
            return
                "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2))Z"
        }
        // Every event the gateway stamps comes through here: the 20 bytes written in place.
        return String(unsafeUninitializedCapacity: 20) { buffer in
            var offset = 0
            // `width` decimal digits, then the separator that follows them.
            func field(_ value: Int64, _ width: Int, _ separator: Unicode.Scalar) {
                var value = value
                for position in stride(from: offset + width - 1, through: offset, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                buffer[offset + width] = UInt8(ascii: separator)
                offset += width + 1
            }
            field(year, 4, "-")
            field(month, 2, "-")
            field(day, 2, "T")
            field(hour, 2, ":")
            field(minute, 2, ":")
            field(second, 2, "Z")
            return 20
        }
    }

    /// The most fraction digits a producer's timestamp may carry (nanoseconds).
    public static let maximumFractionDigits = 9

    /// Accepts a real UTC instant: `YYYY-MM-DDTHH:MM:SS`, an optional fraction of 1 to
    /// `maximumFractionDigits` digits, then `Z`. The date must exist (leap years counted),
    /// hours run 0–23 and minutes and seconds 0–59: a leap second (`:60`) is refused,
    /// because browsers' `Date` cannot read it.
    public static func isValidISO8601(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        func byte(_ index: Int, _ expected: Character) -> Bool {
            index < bytes.count && bytes[index] == expected.asciiValue
        }
        guard let year = number(0..<4), byte(4, "-"), let month = number(5..<7), byte(7, "-"),
            let day = number(8..<10), byte(10, "T"), let hour = number(11..<13), byte(13, ":"),
            let minute = number(14..<16), byte(16, ":"), let second = number(17..<19)
        else { return false }
        guard (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day), hour <= 23,
            minute <= 59, second <= 59
        else { return false }
        var index = 19
        if byte(index, ".") {
            index += 1
            let start = index
            while index - start < maximumFractionDigits, number(index..<(index + 1)) != nil { index += 1 }
            guard index > start else { return false }
        }
        return byte(index, "Z") && index + 1 == bytes.count
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
    }

    /// Howard Hinnant's days-to-civil algorithm.
    private static func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
