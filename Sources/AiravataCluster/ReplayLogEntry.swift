import AiravataCore
import AiravataRedis
import NIOCore

/// One entry of the replay log as `XRANGE` answers it. The log holds three kinds:
/// - one event (`e`): v1 and v2 writers, and requests with producer ids; its id is the
///   event's cursor;
/// - a v3 block (`n`, `b`): the events of one publish call, the body as the node built it;
///   its id is the first event's cursor, and the events after it have the cursors just
///   above (`BusMessage.blockRecords`), up to the stream's last id as the script left it;
/// - the epoch mark (`epoch`), written where a log starts: no event.
struct ReplayLogEntry {
    /// The entry's id: the oldest cursor it holds.
    var first: EventCursor
    /// The newest cursor it holds (`first` unless a block).
    var last: EventCursor
    /// Its events in cursor order; empty for a mark and for a block that does not read.
    var events: [(EventCursor, ByteBuffer)]
    var isMark: Bool
    /// A block whose fields or body do not read: its events cannot be delivered.
    var isMalformed: Bool

    /// Whether the log holding this entry holds `cursor` itself.
    func covers(_ cursor: EventCursor) -> Bool {
        first <= cursor && cursor <= last
    }

    /// Nil when the reply is not an entry at all (no id). Fields other than the three kinds
    /// read as a mark, as releases before v3 read every entry that was not an event.
    init?(_ reply: RedisReply) {
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string.flatMap(EventCursor.init),
            let fields = parts[1].array, fields.count >= 2
        else { return nil }
        first = id
        last = id
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
                let records = BusMessage.blockRecords(in: body, first: id, count: count),
                let newest = records.last
            else {
                isMalformed = true
                return
            }
            events = records
            last = newest.0
        default:
            isMark = true
        }
    }

    /// The cursors a v3 publish call's answer (its block's id, the first cursor) stands for:
    /// `count` of them, from that id. Nil for any other answer.
    static func blockCursors(_ reply: RedisReply, count: Int) -> [String]? {
        guard case .bulk(let text) = reply, let first = EventCursor(bytes: text.readableBytesView),
            BusMessage.fits(count, after: first)
        else { return nil }
        let prefix = "\(first.milliseconds)-"
        return (0..<UInt64(count)).map { prefix + String(first.sequence + $0) }
    }
}
