import AiravataProtocol
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
