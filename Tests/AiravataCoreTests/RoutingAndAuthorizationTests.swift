import AiravataCore
import AiravataProtocol
import Testing

@Suite("Routing keys and authorization rules")
struct RoutingAndAuthorizationTests {
    @Test("routing keys follow the protocol's table")
    func keys() {
        let task = EventRouting(category: .task, experimentID: "e", taskID: "t", projectID: "p", ownerID: "u")
        #expect(task.keys.map(\.description) == ["task:t", "experiment:e", "project:p", "user:u"])
        let experiment = EventRouting(category: .experiment, experimentID: "e", projectID: "p", ownerID: "u")
        #expect(experiment.keys.map(\.description) == ["experiment:e", "project:p", "user:u"])
        let worker = EventRouting(category: .worker, workerID: "w")
        #expect(worker.keys.map(\.description) == ["worker:w", "system"])
        #expect(EventRouting(category: .user, userID: "u").keys.map(\.description) == ["user:u"])
        #expect(EventRouting(category: .system).isBroadcast)
    }

    @Test("delivery authorization")
    func delivery() {
        let owned = EventRouting(category: .experiment, experimentID: "e", projectID: "p", ownerID: "bob")
        #expect(Authorization.mayReceive(owned, principal: Principal(userID: "bob")))
        #expect(Authorization.mayReceive(owned, principal: Principal(userID: "carol", projects: ["p"])))
        #expect(!Authorization.mayReceive(owned, principal: Principal(userID: "alice", projects: ["q"])))
        #expect(Authorization.mayReceive(owned, principal: Principal(userID: "root", roles: ["admin"])))
        let unknown = EventRouting(category: .task, experimentID: "e", taskID: "t")
        #expect(!Authorization.mayReceive(unknown, principal: Principal(userID: "bob")))
        #expect(
            !Authorization.mayReceive(
                EventRouting(category: .worker, workerID: "w"), principal: Principal(userID: "bob")))
        #expect(Authorization.mayReceive(EventRouting(category: .system), principal: Principal(userID: "bob")))
    }

    @Test("subscription authorization")
    func subscriptions() {
        let alice = Principal(userID: "alice", projects: ["p"])
        func decide(_ type: ResourceType, _ id: String?, _ who: Principal = alice) -> Authorization.SubscribeDecision {
            Authorization.subscribe(.init(resourceType: type, resourceID: id), principal: who)
        }
        #expect(decide(.user, nil) == .allowed(SubscriptionKey(.user, "alice")))
        #expect(decide(.project, "p") == .allowed(SubscriptionKey(.project, "p")))
        #expect(decide(.experiment, "anything") == .allowed(SubscriptionKey(.experiment, "anything")))
        for refused in [decide(.user, "bob"), decide(.project, "q"), decide(.worker, "w"), decide(.system, nil)] {
            guard case .refused = refused else {
                Issue.record("expected a refusal, got \(refused)")
                continue
            }
        }
        let root = Principal(userID: "root", roles: ["admin"])
        #expect(decide(.system, nil, root) == .allowed(.system))
        #expect(decide(.user, "bob", root) == .allowed(SubscriptionKey(.user, "bob")))
    }
}
