package import AiravataProtocol
import Logging
package import NIOCore

/// Producers' events: validated, completed (ids, timestamps, routing) and handed to the bus.
extension Gateway {
    package struct Accepted: Sendable, Equatable {
        package var id: String
        package var cursor: String
        /// The producer's id was accepted before, within the deduplication window: this
        /// event was not published again, and `cursor` is the one it was first given.
        package var duplicate = false

        package init(id: String, cursor: String, duplicate: Bool = false) {
            self.id = id
            self.cursor = cursor
            self.duplicate = duplicate
        }
    }

    /// Validates a producer's document, completes ids, timestamps and routing, and hands
    /// the events to the bus. Either every event is accepted or none is.
    package func ingest(_ document: JSONValue) async throws -> [Accepted] {
        let candidates = try validator.validate(document)
        let now = WallClock.nowMicros()
        let (entries, unknown) = Self.ownershipWork(candidates)
        for entry in entries {
            try await ownership.record(experimentID: entry.experimentID, ownership: entry.ownership)
        }
        let known = unknown.isEmpty ? [:] : try await ownership.lookup(experimentIDs: unknown)
        let events = complete(candidates, known: known, nowMicros: now)
        guard let producerIDs = Self.producerIDs(candidates) else {
            return accepted(events, try await bus.publish(events))
        }
        return accepted(events, try await bus.publishOnce(events, producerIDs: producerIDs))
    }

    /// The same on an event loop, without a task: the ownership index and the bus answer
    /// with futures (in one round trip each on Redis). Validation errors fail the future
    /// like they throw there. `dataBytes` holds, for each event of the document in order,
    /// its `data` as the producer wrote it when that is compact (`JSONValue.parsingEvents`),
    /// so that it is not written again.
    package func ingest(
        _ document: JSONValue, dataBytes: [[UInt8]?] = [], on loop: any EventLoop
    ) -> EventLoopFuture<[Accepted]> {
        let candidates: [EventValidator.Candidate]
        do {
            candidates = try validator.validate(document)
        } catch {
            return loop.makeFailedFuture(error)
        }
        return ingest(candidates, dataBytes: dataBytes, on: loop)
    }

    private func ingest(
        _ candidates: [EventValidator.Candidate], dataBytes: [[UInt8]?], on loop: any EventLoop
    ) -> EventLoopFuture<[Accepted]> {
        let now = WallClock.nowMicros()
        let (entries, unknown) = Self.ownershipWork(candidates)
        guard entries.isEmpty && unknown.isEmpty else {
            return ownership.record(entries, thenLookUp: unknown, on: loop).flatMap { known in
                self.publish(
                    self.complete(candidates, known: known, nowMicros: now, dataBytes: dataBytes), candidates,
                    on: loop)
            }
        }
        // Events that name their project and owner (most): no lookup to wait for.
        return publish(complete(candidates, known: [:], nowMicros: now, dataBytes: dataBytes), candidates, on: loop)
    }

    /// The same with a callback on `loop`: events that need no ownership work and carry no
    /// producer ids (most) go to the bus without a future on the way.
    package func ingest(
        _ document: JSONValue, dataBytes: [[UInt8]?] = [], on loop: any EventLoop,
        then answer: @escaping @Sendable (Result<[Accepted], any Error>) -> Void
    ) {
        let candidates: [EventValidator.Candidate]
        do {
            candidates = try validator.validate(document)
        } catch {
            answer(.failure(error))
            return
        }
        let (entries, unknown) = Self.ownershipWork(candidates)
        guard entries.isEmpty, unknown.isEmpty, Self.producerIDs(candidates) == nil else {
            ingest(candidates, dataBytes: dataBytes, on: loop).whenComplete(answer)
            return
        }
        let events = complete(candidates, known: [:], nowMicros: WallClock.nowMicros(), dataBytes: dataBytes)
        bus.publish(events, on: loop) { result in answer(result.map { self.accepted(events, $0) }) }
    }

    private func publish(
        _ events: [GatewayEvent], _ candidates: [EventValidator.Candidate], on loop: any EventLoop
    ) -> EventLoopFuture<[Accepted]> {
        guard let producerIDs = Self.producerIDs(candidates) else {
            return bus.publish(events, on: loop).map { self.accepted(events, $0) }
        }
        return bus.publishOnce(events, producerIDs: producerIDs, on: loop).map { self.accepted(events, $0) }
    }

    /// The producers' own ids, nil when no event has one: those events take the plain
    /// publish path, which costs nothing for deduplication.
    private static func producerIDs(_ candidates: [EventValidator.Candidate]) -> [String?]? {
        candidates.contains { $0.id != nil } ? candidates.map(\.id) : nil
    }

    /// What ingesting these events reads and writes in experiment → (project, owner):
    /// experiment events that name a project or owner are remembered for later task events;
    /// experiment and task events that lack either are completed from it.
    private static func ownershipWork(_ candidates: [EventValidator.Candidate]) -> (
        entries: [(experimentID: String, ownership: ExperimentOwnership)], unknown: [String]
    ) {
        var entries: [(experimentID: String, ownership: ExperimentOwnership)] = []
        var unknown: [String] = []
        var seen: Set<String> = []
        for candidate in candidates {
            let routing = candidate.routing
            guard routing.category == .experiment || routing.category == .task, let experimentID = routing.experimentID
            else { continue }
            if routing.category == .experiment, routing.projectID != nil || routing.ownerID != nil {
                entries.append(
                    (experimentID, ExperimentOwnership(projectID: routing.projectID, ownerID: routing.ownerID)))
            }
            if routing.projectID == nil || routing.ownerID == nil, seen.insert(experimentID).inserted {
                unknown.append(experimentID)
            }
        }
        return (entries, unknown)
    }

    /// Ids, timestamps, and the project and owner of events that lack them.
    private func complete(
        _ candidates: [EventValidator.Candidate], known: [String: ExperimentOwnership], nowMicros: Int64,
        dataBytes: [[UInt8]?] = []
    ) -> [GatewayEvent] {
        assert(dataBytes.isEmpty || dataBytes.count == candidates.count, "one dataBytes entry per event")
        // `String` keys are byte-exact here: validated experiment ids are ASCII.
        return candidates.enumerated().map { index, candidate in
            var routing = candidate.routing
            if let experimentID = routing.experimentID, let owner = known[experimentID] {
                routing.projectID = routing.projectID ?? owner.projectID
                routing.ownerID = routing.ownerID ?? owner.ownerID
            }
            var event = event(from: candidate, routing: routing, nowMicros: nowMicros)
            if index < dataBytes.count { event.dataBytes = dataBytes[index] }
            return event
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

    private func accepted(_ events: [GatewayEvent], _ publications: [Publication]) -> [Accepted] {
        statistics.eventsAccepted(publications.filter { !$0.duplicate }.count)
        return zip(events, publications).map { Accepted(id: $0.id, cursor: $1.cursor, duplicate: $1.duplicate) }
    }
}
