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
}
