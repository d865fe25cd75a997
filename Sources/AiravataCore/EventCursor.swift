/// A position in the replay log, written `<milliseconds>-<sequence>` like a Redis stream
/// entry id, and ordered the way Redis orders those ids.
///
/// Clients treat a cursor as an opaque string; the gateway compares them to hand each
/// connection every event once and in order, across reconnects.
package struct EventCursor: Sendable, Hashable, Comparable, CustomStringConvertible {
    package var milliseconds: UInt64
    package var sequence: UInt64

    package init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Nil unless the text is two runs of ASCII digits joined by a dash (no sign, no space,
    /// no leading zero: one cursor has one spelling, so it reads back as it was written).
    package init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, Self.isDigits(parts[0]), Self.isDigits(parts[1]),
            let milliseconds = UInt64(parts[0]), let sequence = UInt64(parts[1])
        else {
            return nil
        }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// The same grammar read straight from bytes, without building a string: the bus reads
    /// one cursor per event. Inlinable, so that callers get a copy for their byte type.
    @inlinable
    package init?(bytes: some Collection<UInt8>) {
        var milliseconds: UInt64 = 0
        var sequence: UInt64 = 0
        var digits = 0
        var first: UInt8 = 0
        var inSequence = false
        for byte in bytes {
            if byte == UInt8(ascii: "-"), !inSequence {
                guard digits > 0, digits == 1 || first != UInt8(ascii: "0") else { return nil }
                inSequence = true
                digits = 0
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 20 else { return nil }
            if digits == 0 { first = byte }
            let (times, overflow) = (inSequence ? sequence : milliseconds).multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow, !carry else { return nil }
            if inSequence { sequence = sum } else { milliseconds = sum }
            digits += 1
        }
        guard inSequence, digits > 0, digits == 1 || first != UInt8(ascii: "0") else { return nil }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    private static func isDigits(_ part: some StringProtocol) -> Bool {
        !part.utf8.isEmpty && part.utf8.count <= 20
            && part.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            && (part.utf8.count == 1 || part.utf8.first != UInt8(ascii: "0"))
    }

    package static func < (lhs: EventCursor, rhs: EventCursor) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    package var description: String { "\(milliseconds)-\(sequence)" }
}
