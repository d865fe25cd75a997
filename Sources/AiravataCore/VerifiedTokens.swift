import AiravataProtocol
import Synchronization

/// Tokens whose signature and claims were checked, with the principal they proved, until
/// the token expires (or a minute has passed, whichever is first). Producers and
/// reconnecting clients present the same token again and again; checking a signature and
/// decoding its claims each time cost more than the rest of an ingestion request.
///
/// Keys compare as bytes (`ExactString`): a token that is only canonically equivalent to a
/// cached one is verified afresh, and fails. Refused tokens are never cached, so a bad token
/// cannot be made to pass. The cache is bounded; when full it starts again empty, which
/// costs verifications, never correctness.
final class VerifiedTokens: Sendable {
    /// Longest a verified token is trusted without a fresh check: claims are re-read after
    /// a key change within this time.
    static let maxAgeMicros: Int64 = 60_000_000
    /// Most tokens remembered.
    static let capacity = 4096
    /// Longer tokens are not remembered (they are rare, and each would hold its bytes).
    static let maxTokenBytes = 4096

    private struct Entry {
        var principal: Principal
        var validUntilMicros: Int64
    }

    private let entries = Mutex([ExactString: Entry]())

    init() {}

    func principal(for token: String, nowMicros: Int64) -> Principal? {
        trusted(token, nowMicros: nowMicros)?.principal
    }

    /// The principal and until when the token is trusted without a fresh check.
    func trusted(_ token: String, nowMicros: Int64) -> (principal: Principal, untilMicros: Int64)? {
        guard token.utf8.count <= Self.maxTokenBytes else { return nil }
        let key = ExactString(token)
        return entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard nowMicros < entry.validUntilMicros else {
                entries[key] = nil
                return nil
            }
            return (entry.principal, entry.validUntilMicros)
        }
    }

    /// - Parameter expiresMicros: when the token stops being valid (its `exp` plus leeway).
    func remember(_ token: String, principal: Principal, expiresMicros: Int64, nowMicros: Int64) {
        guard token.utf8.count <= Self.maxTokenBytes else { return }
        let until = min(expiresMicros, nowMicros + Self.maxAgeMicros)
        guard until > nowMicros else { return }
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[ExactString(token)] = Entry(principal: principal, validUntilMicros: until)
        }
    }
}
