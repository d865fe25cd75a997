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

    /// Nil unless the text is two decimal numbers joined by a dash.
    package init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].utf8.count <= 20, parts[1].utf8.count <= 20,
            let milliseconds = UInt64(parts[0]), let sequence = UInt64(parts[1])
        else {
            return nil
        }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    package static func < (lhs: EventCursor, rhs: EventCursor) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    package var description: String { "\(milliseconds)-\(sequence)" }
}
