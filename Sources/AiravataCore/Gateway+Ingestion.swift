package import AiravataProtocol
import Logging
package import NIOCore

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
        try await recordOwnership(of: candidates)
        let events = try await complete(candidates, nowMicros: now)
        let cursors = try await bus.publish(events)
        return accepted(events, cursors)
    }

    /// The same on an event loop, without a task, when no event needs the ownership index
    /// (a task, worker, user or system event with its routing complete); otherwise the
    /// async path. Validation errors fail the future like they throw there.
    package func ingest(_ document: JSONValue, on loop: any EventLoop) -> EventLoopFuture<[Accepted]> {
        let candidates: [EventValidator.Candidate]
        do {
            candidates = try validator.validate(document)
        } catch {
            return loop.makeFailedFuture(error)
        }
        guard !candidates.contains(where: Self.needsOwnershipIndex) else {
            return loop.makeFutureWithTask { try await self.ingest(document) }
        }
        let now = WallClock.nowMicros()
        let events = candidates.map { event(from: $0, routing: $0.routing, nowMicros: now) }
        return bus.publish(events, on: loop).map { self.accepted(events, $0) }
    }

    /// Whether ingesting this event reads or writes experiment → (project, owner).
    private static func needsOwnershipIndex(_ candidate: EventValidator.Candidate) -> Bool {
        let routing = candidate.routing
        switch routing.category {
        case .experiment:
            return routing.experimentID != nil
        case .task:
            return routing.experimentID != nil && (routing.projectID == nil || routing.ownerID == nil)
        case .worker, .user, .system, .control:
            return false
        }
    }

    /// Experiment events name their project and owner: remembered for later task events.
    private func recordOwnership(of candidates: [EventValidator.Candidate]) async throws {
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
    }

    /// Ids, timestamps, and the project and owner of events that lack them.
    private func complete(_ candidates: [EventValidator.Candidate], nowMicros: Int64) async throws -> [GatewayEvent] {
        let unknown = candidates.compactMap { candidate -> String? in
            let routing = candidate.routing
            guard routing.category == .experiment || routing.category == .task,
                routing.projectID == nil || routing.ownerID == nil
            else { return nil }
            return routing.experimentID
        }
        // `String` keys are byte-exact here: validated experiment ids are ASCII.
        let known = unknown.isEmpty ? [:] : try await ownership.lookup(experimentIDs: Array(Set(unknown)))
        return candidates.map { candidate in
            var routing = candidate.routing
            if let experimentID = routing.experimentID, let owner = known[experimentID] {
                routing.projectID = routing.projectID ?? owner.projectID
                routing.ownerID = routing.ownerID ?? owner.ownerID
            }
            return event(from: candidate, routing: routing, nowMicros: nowMicros)
        }
    }

    private func event(from candidate: EventValidator.Candidate, routing: EventRouting, nowMicros: Int64)
        -> GatewayEvent
    {
        GatewayEvent(
            type: candidate.type,
            id: candidate.id ?? ids.id(for: candidate.type, routing: routing, nowMicros: nowMicros),
            timestamp: candidate.timestamp ?? Timestamp.iso8601(unixSeconds: nowMicros / 1_000_000),
            data: candidate.data,
            routing: routing,
            acceptedAtMicros: nowMicros
        )
    }

    private func accepted(_ events: [GatewayEvent], _ cursors: [String]) -> [Accepted] {
        statistics.eventsAccepted(events.count)
        return zip(events, cursors).map { Accepted(id: $0.id, cursor: $1) }
    }
}
