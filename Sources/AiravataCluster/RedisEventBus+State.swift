import AiravataCore
import NIOCore

/// The bus's state under its lock (`RedisEventBus.state`): the node's position in the log,
/// what a gap fill holds, and what it remembers to judge events the log lost.
extension RedisEventBus {
    struct State {
        var sink: (@Sendable (DeliveredEvent) -> Void)?
        var lastCursor: EventCursor?
        /// The id of the log entry that holds `lastCursor`: the cursor itself, or the first of
        /// its v3 block. After a failover to a replica that lagged, another block may cover
        /// the same cursor; only the same entry means the log still holds what was delivered.
        var lastEntry: EventCursor?
        /// The body delivered at `lastCursor` (a slice of the message it came in; nil after a
        /// mark or an unreadable block). A block that took a lost one's place after a rewind
        /// may even have its id; it will not have its events.
        var lastBody: ByteBuffer?
        /// While a gap is being filled from the stream, live messages wait here.
        var filling = false
        var held: [HeldMessage] = []
        /// The bodies' bytes in `held`.
        var heldBytes = 0
        /// How many of `held` arrived before the fill's latest log read was sent: a real event
        /// among them was already in the log for that read, so it is delivered from there.
        var heldBeforeLastRead = 0
        /// The fill held `maxHeldMessages` (or `maxHeldBytes`) and dropped what came after: it
        /// reads the log again.
        var heldOverflowed = false
        /// Counts requests for a fill (a resubscription, a cursor to check). A request that
        /// arrives after the running fill's last read started may concern events that read
        /// did not see, so that fill must not end the filling: it runs again.
        var fillRequestCount = 0
        /// Tests: runs after a fill's last log read, before it releases what it held.
        var afterFillRead: (@Sendable () async -> Void)?
        var subscribedOnce = false
        /// Why the log's tip could not be read at start (health shows it until it is read).
        var tipError: String?
        /// Whether the running fill repairs an outage (counted) rather than checks a cursor.
        var countNextFill = false
        var rejectedMessages = 0
        var lastHeartbeatNanos: UInt64 = 0
        /// When the subscriber was last rebuilt for silence: at most one rebuild per limit.
        /// Kept apart from `lastHeartbeatNanos`, which only a heartbeat heard may move (health
        /// reads it: a rebuild is no sign of life, and counting it as one made a node cut off
        /// from Redis turn ready for a few seconds after each rebuild).
        var lastSilenceRebuildNanos: UInt64 = 0
        var gapFills = 0
        var replayed = 0
        var logReset: [@Sendable (EventCursor?) -> Void] = []
        /// The node's recent positions, oldest first (every cursor it delivered or moved past):
        /// whether it ever delivered an event that the log lost.
        var delivered = CursorRing<EventCursor>(capacity: RedisEventBus.rememberedPositions)
        /// Lost events at or below this cursor are covered by a notice this node gave its
        /// clients: they refetched after it (its position, the clock at the notice, or the lost
        /// cursor it was given for, whichever is latest).
        var coveredBelow: EventCursor?
        /// The id of the newest loss record (`RedisKeys.logLosses`) this node has judged: each
        /// record once.
        var lastLossRecord: String?
        /// When the bus started delivering: another node's loss from before then concerns
        /// none of this node's clients.
        var startedAt: EventCursor?
        /// A v3 header whose body has not arrived yet (the next message on the v3 channel).
        var pendingBlock: BusMessage.BlockHeader?

        /// Moves the node's position: the cursor, the entry holding it, the body there.
        mutating func move(to cursor: EventCursor, entry: EventCursor, body: ByteBuffer?) {
            (lastCursor, lastEntry, lastBody) = (cursor, entry, body)
            delivered.append(cursor)
        }

        /// Whether this node never delivered the event at `lost` (one the log lost): it is past
        /// the position, or within the remembered positions and not among them. One older than
        /// them all counts as delivered: no client here can still be waiting for it.
        func neverDelivered(_ lost: EventCursor) -> Bool {
            guard let position = lastCursor else { return false }
            if lost > position { return true }
            guard let oldest = delivered.entries.first, lost > oldest else { return false }
            return delivered.position(of: lost) == nil
        }

        /// Tells the node's clients (through the handlers) that the event at `lost` and maybe
        /// others are missing, unless an earlier notice covers it. Under the bus's lock, so
        /// that the notice's cursor (the position) is at or above every event delivered
        /// before it, and below every event after it.
        mutating func announceLostEvents(_ lost: EventCursor, nowMillis: UInt64) -> Bool {
            guard let position = lastCursor, coveredBelow.map({ lost > $0 }) ?? true else { return false }
            // The notice covers every loss up to now, and this one (a forged cursor may be far
            // ahead of the clock: the same forgery again costs no second notice).
            coveredBelow = max(position, EventCursor(milliseconds: nowMillis, sequence: 0), lost)
            for handler in logReset { handler(position) }
            return true
        }

        /// Some node found the log rewound past `lost` (a record in `RedisKeys.logLosses`):
        /// this node's clients are told if it never delivered that event.
        mutating func judgeReportedLoss(_ lost: EventCursor, nowMillis: UInt64) -> Bool {
            if let startedAt, lost < startedAt { return false }
            return neverDelivered(lost) && announceLostEvents(lost, nowMillis: nowMillis)
        }

        /// Whether `lost` is older than every position this node remembers, so that it cannot
        /// tell whether it delivered it (it assumes it did).
        func olderThanMemory(_ lost: EventCursor) -> Bool {
            guard let oldest = delivered.entries.first, let position = lastCursor else { return false }
            return lost < oldest && lost <= position
        }
    }

    /// A live event that waits for a gap fill.
    struct HeldMessage {
        var cursor: EventCursor
        /// The id of the log entry it is in (`cursor` unless it came in a v3 block).
        var entry: EventCursor
        var body: ByteBuffer
    }
}
