package import NIOCore

/// Who owns an experiment and which project it belongs to.
package struct ExperimentOwnership: Sendable, Equatable {
    package var projectID: String?
    package var ownerID: String?

    package init(projectID: String?, ownerID: String?) {
        self.projectID = projectID
        self.ownerID = ownerID
    }
}

/// The experiment → (project, owner) index the cluster learns from experiment events, so
/// that task events, which name only their experiment, reach project and user subscribers.
package protocol OwnershipIndex: Sendable {
    func record(experimentID: String, ownership: ExperimentOwnership) async throws
    func lookup(experimentIDs: [String]) async throws -> [String: ExperimentOwnership]

    /// Records every entry, then looks up `experimentIDs` (seeing those records), answered
    /// on `loop`: ingestion on an event loop stays there, in one round trip where it can.
    func record(
        _ entries: [(experimentID: String, ownership: ExperimentOwnership)],
        thenLookUp experimentIDs: [String],
        on loop: any EventLoop
    ) -> EventLoopFuture<[String: ExperimentOwnership]>
}

extension OwnershipIndex {
    package func record(
        _ entries: [(experimentID: String, ownership: ExperimentOwnership)],
        thenLookUp experimentIDs: [String],
        on loop: any EventLoop
    ) -> EventLoopFuture<[String: ExperimentOwnership]> {
        loop.makeFutureWithTask {
            for entry in entries { try await self.record(experimentID: entry.experimentID, ownership: entry.ownership) }
            return experimentIDs.isEmpty ? [:] : try await self.lookup(experimentIDs: experimentIDs)
        }
    }
}
