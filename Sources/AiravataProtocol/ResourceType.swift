/// What a connection can subscribe to.
public enum ResourceType: String, Sendable, CaseIterable, Hashable {
    case experiment
    case task
    case project
    case user
    case worker
    case system

    /// The plural path segment of `/ws/{segment}/{id}`.
    public init?(pathSegment: String) {
        switch pathSegment {
        case "experiments": self = .experiment
        case "tasks": self = .task
        case "projects": self = .project
        case "workers": self = .worker
        default: return nil
        }
    }
}
