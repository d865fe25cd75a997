public import NIOCore

/// A Lua script that Redis runs by its SHA-1 digest (`EVALSHA`), so that the body crosses
/// the network and is hashed by Redis once per script cache rather than once per call.
/// A Redis that does not know the digest (restarted, or `SCRIPT FLUSH`ed) answers
/// `NOSCRIPT`; the call is then repeated once as `EVAL`, which caches the body again.
public struct RedisScript: Sendable {
    public let body: String
    /// Lower-case hex, as Redis spells it.
    public let sha1: String

    public init(_ body: String) {
        self.body = body
        self.sha1 = SHA1.hex(Array(body.utf8))
    }

    /// `EVALSHA digest numkeys keys… arguments…`.
    public func evalsha(keys: [RedisArgument], arguments: [RedisArgument]) -> RedisCommand {
        RedisCommand("EVALSHA", [RedisArgument(sha1), RedisArgument(keys.count)] + keys + arguments)
    }

    /// `EVAL body numkeys keys… arguments…`.
    public func eval(keys: [RedisArgument], arguments: [RedisArgument]) -> RedisCommand {
        RedisCommand("EVAL", [RedisArgument(body), RedisArgument(keys.count)] + keys + arguments)
    }

    static func isNoScript(_ reply: RedisReply) -> Bool {
        if case .error(let message) = reply { return message.hasPrefix("NOSCRIPT") }
        return false
    }
}

extension RedisClient {
    /// Runs the script by digest, falling back to its body once when Redis lacks it.
    @discardableResult
    public func run(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument]) async throws
        -> RedisReply
    {
        do {
            return try await send(script.evalsha(keys: keys, arguments: arguments))
        } catch let error as RedisError where error.isNoScript {
            return try await send(script.eval(keys: keys, arguments: arguments))
        }
    }

    /// The same without a task: the reply (an error reply included, as `.error`) completes
    /// the future on the connection's event loop. For callers that batch on that loop.
    public func submit(_ script: RedisScript, keys: [RedisArgument], arguments: [RedisArgument])
        -> EventLoopFuture<RedisReply>
    {
        let connection: RedisConnection
        do {
            connection = try current()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return connection.reply(to: script.evalsha(keys: keys, arguments: arguments)).flatMap { reply in
            guard RedisScript.isNoScript(reply) else { return connection.channel.eventLoop.makeSucceededFuture(reply) }
            return connection.reply(to: script.eval(keys: keys, arguments: arguments))
        }
    }
}

extension RedisClient {
    /// Commands back to back in one write, without a task; the future completes on the
    /// connection's loop with every reply in order (error replies included, as `.error`).
    public func submit(_ commands: [RedisCommand]) -> EventLoopFuture<[RedisReply]> {
        let connection: RedisConnection
        do {
            connection = try current()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        let replies = commands.map { connection.reply(to: $0, flush: false) }
        connection.channel.flush()
        return EventLoopFuture.whenAllSucceed(replies, on: connection.channel.eventLoop)
    }
}

/// SHA-1 (FIPS 180-4), only to name scripts the way Redis does; not for security.
enum SHA1 {
    static func hex(_ message: [UInt8]) -> String {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (
            0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0
        )
        var padded = message
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        let bits = UInt64(message.count) &* 8
        for shift in stride(from: 56, through: 0, by: -8) {
            padded.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
        }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: padded.count, by: 64) {
            for i in 0..<16 {
                let at = chunk + 4 * i
                w[i] =
                    UInt32(padded[at]) << 24 | UInt32(padded[at + 1]) << 16 | UInt32(padded[at + 2]) << 8
                    | UInt32(padded[at + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = x << 1 | x >> 31
            }
            var (a, b, c, d, e) = h
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32) =
                    switch i {
                    case 0..<20: ((b & c) | (~b & d), 0x5A82_7999)
                    case 20..<40: (b ^ c ^ d, 0x6ED9_EBA1)
                    case 40..<60: ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                    default: (b ^ c ^ d, 0xCA62_C1D6)
                    }
                let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, temp)
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
        }
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for word in [h.0, h.1, h.2, h.3, h.4] {
            for shift in stride(from: 28, through: 0, by: -4) { out.append(digits[Int(word >> UInt32(shift) & 0xF)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
