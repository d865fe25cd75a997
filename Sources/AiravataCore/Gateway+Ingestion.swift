package import AiravataProtocol
import Logging

/// Producers' events: validated, completed (ids, timestamps, routing) and handed to the bus.
extension Gateway {
    package struct Accepted: Sendable, Equatable {
        package var id: String
        package var cursor: String
    }

    /// Validates a producer's document, completes ids, timestamps and routing, and hands
    /// the events to the bus. Either every event is accepted or none is.
    package func ingest(_ document: JSONValue) async throws -> [Accepted] {
        let candidates = try validator.validate(document)
        let now = WallClock.nowMicros()
        for candidate in candidates where candidate.routing.category == .experiment {
            let routing = candidate.routing
            guard let experimentID = routing.experimentID, routing.projectID != nil || routing.ownerID != nil else {
                continue
            }
            try await ownership.record(
                experimentID: experimentID,
                ownership: ExperimentOwnership(projectID: routing.projectID, ownerID: routing.ownerID)
            )
        }
        let unknown = candidates.compactMap { candidate -> String? in
            let routing = candidate.routing
            guard routing.category == .experiment || routing.category == .task,
                routing.projectID == nil || routing.ownerID == nil
            else { return nil }
            return routing.experimentID
        }
        // `String` keys are byte-exact here: validated experiment ids are ASCII.
        let known = unknown.isEmpty ? [:] : try await ownership.lookup(experimentIDs: Array(Set(unknown)))
        let events = candidates.map { candidate in
            var routing = candidate.routing
            if let experimentID = routing.experimentID, let owner = known[experimentID] {
                routing.projectID = routing.projectID ?? owner.projectID
                routing.ownerID = routing.ownerID ?? owner.ownerID
            }
            return GatewayEvent(
                type: candidate.type,
                id: candidate.id ?? ids.id(for: candidate.type, routing: routing, nowMicros: now),
                timestamp: candidate.timestamp ?? Timestamp.iso8601(unixSeconds: now / 1_000_000),
                data: candidate.data,
                routing: routing,
                acceptedAtMicros: now
            )
        }
        let cursors = try await bus.publish(events)
        statistics.eventsAccepted(events.count)
        return zip(events, cursors).map { Accepted(id: $0.id, cursor: $1) }
    }
}
