import Logging
import NIOCore

/// The life of a self-healing Redis connection, shared by the command client and the
/// subscriber: connect, serve until the connection closes, back off, and again, until the
/// task is cancelled.
struct ReconnectLoop {
    let configuration: RedisConfiguration
    let role: String
    let logger: Logger

    /// - Parameters:
    ///   - connect: opens (and prepares) a connection.
    ///   - connected: the connection is ready for use.
    ///   - down: the connection is gone, or could not be made.
    func run(
        connect: () async throws -> RedisConnection,
        connected: (RedisConnection) -> Void,
        down: () -> Void
    ) async {
        var backoff = Backoff()
        let metadata: Logger.Metadata = ["redis": "\(configuration.redacted)", "role": "\(role)"]
        while !Task.isCancelled {
            do {
                let connection = try await connect()
                connected(connection)
                logger.info("redis connected", metadata: metadata)
                backoff.reset()
                await withTaskCancellationHandler {
                    try? await connection.closeFuture.get()
                } onCancel: {
                    connection.channel.close(promise: nil)
                }
                down()
                if !Task.isCancelled { logger.warning("redis connection lost", metadata: metadata) }
            } catch {
                down()
                logger.debug("redis connect failed", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
            try? await Task.sleep(for: backoff.next())
        }
    }
}

extension RedisLinkState {
    /// Marks the link down, keeping the time of the first failure of an outage.
    mutating func markDown(nowNanos: UInt64 = NIODeadline.now().uptimeNanoseconds) {
        if case .disconnected = self { return }
        self = .disconnected(sinceNanos: nowNanos)
    }
}
