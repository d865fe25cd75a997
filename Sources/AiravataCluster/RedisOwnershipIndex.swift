package import AiravataCore
package import AiravataRedis

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
        let key = RedisArgument(keys.ownership(experiment: experimentID))
        var fields: [RedisArgument] = [key]
        if let project = ownership.projectID { fields += ["p", RedisArgument(project)] }
        if let owner = ownership.ownerID { fields += ["o", RedisArgument(owner)] }
        guard fields.count > 1 else { return }
        let replies = try await client.pipeline([
            RedisCommand("HSET", fields), RedisCommand("EXPIRE", key, RedisArgument(ttlSeconds)),
        ])
        if case .error(let message) = replies.first { throw RedisError(.server, message) }
    }

    package func lookup(experimentIDs: [String]) async throws -> [String: ExperimentOwnership] {
        let replies = try await client.pipeline(
            experimentIDs.map { RedisCommand("HMGET", RedisArgument(keys.ownership(experiment: $0)), "p", "o") }
        )
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
