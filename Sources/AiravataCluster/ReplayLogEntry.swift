import AiravataCore
import AiravataRedis
import NIOCore

/// One entry of the replay log as `XRANGE` answers it. The log holds three kinds:
/// - one event (`e`): v1 and v2 writers, and requests with producer ids; its id is the
///   event's cursor;
/// - a v3 block (`n`, `b`): the events of one publish call, the body as the node built it;
///   its id is the last event's cursor, and the events before it have the cursors just
///   below (`BusMessage.blockRecords`);
/// - the epoch mark (`epoch`), written where a log starts: no event.
struct ReplayLogEntry {
    /// The entry's id: the newest cursor it holds.
    var id: EventCursor
    /// The oldest cursor it holds (`id` unless a block).
    var first: EventCursor
    /// Its events in cursor order; empty for a mark and for a block that does not read.
    var events: [(EventCursor, ByteBuffer)]
    var isMark: Bool
    /// A block whose fields or body do not read: its events cannot be delivered.
    var isMalformed: Bool

    /// Whether the log holding this entry holds `cursor` itself.
    func covers(_ cursor: EventCursor) -> Bool {
        first <= cursor && cursor <= id
    }

    /// Nil when the reply is not an entry at all (no id). Fields other than the three kinds
    /// read as a mark, as releases before v3 read every entry that was not an event.
    init?(_ reply: RedisReply) {
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string.flatMap(EventCursor.init),
            let fields = parts[1].array, fields.count >= 2
        else { return nil }
        self.id = id
        first = id
        events = []
        isMark = false
        isMalformed = false
        switch fields[0].string {
        case "e":
            guard case .bulk(let body) = fields[1] else {
                isMalformed = true
                return
            }
            events = [(id, body)]
        case "n":
            guard fields.count == 4, fields[2].string == "b", case .bulk(let body) = fields[3],
                let count = fields[1].string.flatMap({ Int($0) }),
                let records = BusMessage.blockRecords(in: body, last: id, count: count)
            else {
                isMalformed = true
                return
            }
            events = records
            first = records[0].0
        default:
            isMark = true
        }
    }

    /// The cursors a v3 publish call's answer (its block's id, the last cursor) stands for:
    /// `count` of them, up to that id. Nil for any other answer.
    static func blockCursors(_ reply: RedisReply, count: Int) -> [String]? {
        guard count >= 1, case .bulk(let text) = reply, let last = EventCursor(bytes: text.readableBytesView),
            last.sequence >= UInt64(count - 1)
        else { return nil }
        let first = last.sequence - UInt64(count - 1)
        let prefix = "\(last.milliseconds)-"
        return (0..<UInt64(count)).map { prefix + String(first + $0) }
    }
}
