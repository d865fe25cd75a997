import AiravataProtocol
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Sessions and resume: what a reconnecting client is owed, and keeping sessions alive.
extension Gateway {
    /// The replayed events this connection is owed, and the outcome message after them.
    func replayFrames(
        after text: String,
        keys: Set<SubscriptionKey>,
        principal: Principal
    ) async -> ([ByteBuffer], EventCursor?) {
        var failure = "cursor_out_of_window"
        if let cursor = EventCursor(text) {
            let request = ReplayReader.Request(after: cursor, limit: configuration.maxReplayEvents) { routing in
                guard routing.isBroadcast || routing.keys.contains(where: keys.contains) else { return false }
                return Authorization.mayReceive(routing, principal: principal)
            }
            do {
                switch try await replay.replay(request) {
                case .recovered(let owed, let end):
                    var done = resumeOutcome("replay_complete", reason: nil, cursor: end)
                    if case .object(var data)? = done.data {
                        data["replayed"] = .number(String(owed.count))
                        done.data = .object(data)
                    }
                    statistics.resumed(recovered: true)
                    return (owed.map { frames.frame($0.event, cursor: $0.cursor) } + [frame(done)], end)
                case .tooLarge:
                    // More than a client can take in one go: it refetches instead.
                    failure = "replay_too_large"
                case .outOfWindow:
                    break
                }
            } catch {
                logger.warning("replay log read failed", metadata: ["error": "\(error)"])
                failure = "replay_unavailable"
            }
        } else {
            failure = "invalid_cursor"
        }
        statistics.resumed(recovered: false)
        // Live events continue from the log's end; the client refetches what it missed.
        let tip = try? await currentTip()
        return ([frame(resumeOutcome("recovery_failed", reason: failure, cursor: tip))], tip)
    }

    func resumeOutcome(_ action: String, reason: String?, cursor: EventCursor?) -> Envelope {
        var data: JSONObject = ["action": .string(action)]
        if let reason { data["reason"] = .string(reason) }
        var envelope = control(.systemStatus, prefix: "system", data: .object(data))
        envelope.cursor = cursor?.description
        return envelope
    }

    /// The replay log lost events this node's connected clients may have missed, and no node
    /// can give them now (`EventBus.onLogReset`; the replay reader forgets its memory through
    /// its own handler). Each client is told `recovery_failed` (`log_rewound`) and refetches;
    /// `position` is the newest cursor delivered here before the notice, and every live event
    /// after the notice is newer.
    func logRewound(position: EventCursor?) {
        broadcastLocally(resumeOutcome("recovery_failed", reason: "log_rewound", cursor: position))
    }

    func currentTip() async throws -> EventCursor {
        let bus = self.bus
        return try await replay.startCursor { try await bus.logTip() }
    }

    @discardableResult
    func persist(_ sessionID: String, _ record: SessionRecord) async -> Bool {
        // Callers refuse what would not fit; this keeps any other path from writing it.
        guard record.fitsInStore else {
            logger.warning(
                "refused to save a session over the size bound",
                metadata: ["session.id": "\(sessionID)", "bound": "\(SessionRecord.maxEncodedBytes)"])
            return false
        }
        do {
            try await sessions.save(sessionID, record, sessionsPerUser: configuration.maxSessionsPerUser)
            return true
        } catch {
            logSessionNotSaved(sessionID, error: "\(error)")
            return false
        }
    }

    /// The connection works on; only a later resume would miss this change.
    func logSessionNotSaved(_ sessionID: String, error: String) {
        logger.warning(
            "could not save the session; a resume would restore an older state",
            metadata: ["session.id": "\(sessionID)", "error": "\(error)"])
    }

    /// Keeps the sessions of open connections from expiring.
    package func renewSessions() async {
        let handles = openSessions.withLock { Array($0.values) }
        guard !handles.isEmpty else { return }
        do {
            try await sessions.renew(handles)
        } catch {
            logger.warning("could not renew sessions", metadata: ["error": "\(error)", "count": "\(handles.count)"])
        }
    }

    /// 128 random bits, hex: unguessable, and safe in a Redis key and a URL. Every connect
    /// makes one, so the bits come from one call to the kernel's random source
    /// (`arc4random_buf`: one `getrandom`; the system generator asks once per 64 bits) and
    /// go to hex without intermediate strings.
    package static func newSessionID() -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { bits in
            #if canImport(Glibc)
                if let base = bits.baseAddress { arc4random_buf(base, bits.count) }
            #else
                var generator = SystemRandomNumberGenerator()
                for index in bits.indices { bits[index] = generator.next() }
            #endif
            return LowerHex.string(bits)
        }
    }

    package static func isWellFormedSessionID(_ text: String) -> Bool {
        (8...128).contains(text.utf8.count)
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: "_")
            }
    }
}
