import AiravataCore
import AiravataRedis
import Logging
import NIOCore

/// Durable ingestion (`--durable-replicas`): what a publish call waits for before its
/// requests are acknowledged.
extension RedisEventBus {
    /// With durable ingestion, a publish call's answer waits for `WAIT` on the same connection:
    /// the call succeeds only once `replicas` replicas acknowledged every write before it.
    /// Short of that the call fails (503 for its requests), though Redis has the events and
    /// may have delivered them.
    static func durable(
        _ durability: Durability, on publisher: RedisClient, logger: Logger
    ) -> @Sendable (EventLoopFuture<RedisReply>) -> EventLoopFuture<RedisReply> {
        guard durability.replicas > 0 else { return { $0 } }
        return { published in
            published.flatMap { reply in
                if case .error = reply { return published }
                return publisher.submit([
                    RedisCommand("WAIT", RedisArgument(durability.replicas), RedisArgument(durability.timeoutMillis))
                ])
                .flatMapThrowing { replies in
                    let reached = replies.first?.integer ?? 0
                    guard reached >= Int64(durability.replicas) else {
                        logger.warning(
                            "events reached fewer replicas than --durable-replicas; answered 503",
                            metadata: [
                                "replicas.reached": "\(reached)", "replicas.required": "\(durability.replicas)",
                                "timeout.ms": "\(durability.timeoutMillis)",
                            ])
                        throw EventBusUnavailableError(
                            "the events reached \(reached) of \(durability.replicas) replicas within \(durability.timeoutMillis) ms"
                        )
                    }
                    return reply
                }
            }
        }
    }
}
