package import AiravataCore
package import AiravataRedis
package import NIOCore

/// experiment → (project, owner) in Redis hashes that expire, so any node can route a task
/// event whose experiment another node saw.
package final class RedisOwnershipIndex: OwnershipIndex {
    private let client: RedisClient
    private let keys: RedisKeys
    private let ttlSeconds: Int

    package init(client: RedisClient, keyPrefix: String, ttlSeconds: Int) {
        self.client = client
        self.keys = RedisKeys(prefix: keyPrefix)
        self.ttlSeconds = ttlSeconds
    }

    package func record(experimentID: String, ownership: ExperimentOwnership) async throws {
        let commands = recordCommands(experimentID: experimentID, ownership: ownership)
        guard !commands.isEmpty else { return }
        let replies = try await client.pipeline(commands)
        if case .error(let message) = replies.first { throw RedisError(.server, message) }
    }

    package func lookup(experimentIDs: [String]) async throws -> [String: ExperimentOwnership] {
        let replies = try await client.pipeline(experimentIDs.map(lookupCommand))
        return Self.found(experimentIDs, in: replies)
    }

    /// One write for all of it, and no task: records first, so the lookups see them.
    package func record(
        _ entries: [(experimentID: String, ownership: ExperimentOwnership)],
        thenLookUp experimentIDs: [String],
        on loop: any EventLoop
    ) -> EventLoopFuture<[String: ExperimentOwnership]> {
        let records = entries.flatMap { recordCommands(experimentID: $0.experimentID, ownership: $0.ownership) }
        guard !records.isEmpty || !experimentIDs.isEmpty else { return loop.makeSucceededFuture([:]) }
        return client.submit(records + experimentIDs.map(lookupCommand)).hop(to: loop)
            .flatMapThrowing { replies in
                for reply in replies.prefix(records.count) {
                    if case .error(let message) = reply { throw RedisError(.server, message) }
                }
                return Self.found(experimentIDs, in: Array(replies.dropFirst(records.count)))
            }
    }

    private func lookupCommand(_ experimentID: String) -> RedisCommand {
        RedisCommand("HMGET", RedisArgument(keys.ownership(experiment: experimentID)), "p", "o")
    }

    /// HSET and EXPIRE of one entry; none when it names neither project nor owner.
    private func recordCommands(experimentID: String, ownership: ExperimentOwnership) -> [RedisCommand] {
        let key = RedisArgument(keys.ownership(experiment: experimentID))
        var fields: [RedisArgument] = [key]
        if let project = ownership.projectID { fields += ["p", RedisArgument(project)] }
        if let owner = ownership.ownerID { fields += ["o", RedisArgument(owner)] }
        guard fields.count > 1 else { return [] }
        return [RedisCommand("HSET", fields), RedisCommand("EXPIRE", key, RedisArgument(ttlSeconds))]
    }

    private static func found(_ experimentIDs: [String], in replies: [RedisReply]) -> [String: ExperimentOwnership] {
        var found: [String: ExperimentOwnership] = [:]
        for (id, reply) in zip(experimentIDs, replies) {
            guard let values = reply.array, values.count == 2 else { continue }
            let project = values[0].string
            let owner = values[1].string
            if project != nil || owner != nil { found[id] = ExperimentOwnership(projectID: project, ownerID: owner) }
        }
        return found
    }
}
