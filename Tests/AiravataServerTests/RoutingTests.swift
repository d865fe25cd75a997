import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Testing

/// Each test ends with a system broadcast as a sentinel: every connection receives it, so
/// a connection whose next message is the sentinel provably received nothing before it.
@Suite("Event routing, at-most-once, order and authorization")
struct RoutingTests {
    static func expectNext(_ socket: RawWebSocket, isEvent type: String, id key: String, _ value: String) async throws {
        let message = try await socket.nextMessage()
        #expect(message["type"]?.stringValue == type, "expected \(type), got \(message.jsonString)")
        let data = message["data"]
        let found =
            data?["experiment"]?[key]?.stringValue ?? data?["task"]?[key]?.stringValue
            ?? data?["worker"]?[key]?.stringValue ?? data?[key]?.stringValue
        #expect(found == value, "expected \(key)=\(value) in \(message.jsonString)")
    }

    static func expectSentinel(_ socket: RawWebSocket, _ note: String, because reason: String) async throws {
        let message = try await socket.nextMessage()
        #expect(message["data"]?["notice"]?.stringValue == note, "\(reason); got \(message.jsonString)")
    }

    @Test("experiment events reach experiment, project and user subscribers only")
    func experimentRouting() async throws {
        try await TestGateway.with { node in
            let experiment = try await node.connect("/ws/experiments/exp-1", user: "viewer", projects: ["p-1"])
            let project = try await node.connect("/ws/projects/p-1", user: "member", projects: ["p-1"])
            let owner = try await node.connect("/ws/user", user: "u-1")
            let task = try await node.connect("/ws/tasks/t-1", user: "member2", projects: ["p-1"])
            let otherProject = try await node.connect("/ws/projects/p-2", user: "other", projects: ["p-2"])
            let sockets = [experiment, project, owner, task, otherProject]
            defer { sockets.forEach { $0.close() } }

            try await node.publish(Events.experiment(id: "exp-1", project: "p-1", owner: "u-1"))
            try await node.publish(Events.system(note: "end"))
            for socket in [experiment, project, owner] {
                try await Self.expectNext(socket, isEvent: "experiment_updated", id: "id", "exp-1")
            }
            for socket in sockets {
                try await Self.expectSentinel(socket, "end", because: "only the sentinel should follow")
            }
        }
    }

    @Test("task events reach task, experiment, project and user subscribers")
    func taskRouting() async throws {
        try await TestGateway.with { node in
            let task = try await node.connect("/ws/tasks/t-1", user: "viewer", projects: ["p-1"])
            let experiment = try await node.connect("/ws/experiments/exp-1", user: "viewer2", projects: ["p-1"])
            let project = try await node.connect("/ws/projects/p-1", user: "member", projects: ["p-1"])
            let owner = try await node.connect("/ws/user", user: "u-1")
            let otherTask = try await node.connect("/ws/tasks/t-2", user: "viewer3", projects: ["p-1"])
            let sockets = [task, experiment, project, owner, otherTask]
            defer { sockets.forEach { $0.close() } }

            // The node learns exp-1 → (p-1, u-1) from the experiment event.
            try await node.publish(Events.experiment("experiment_created", id: "exp-1", project: "p-1", owner: "u-1"))
            try await node.publish(Events.task(id: "t-1", experiment: "exp-1"))
            try await node.publish(
                .object([
                    "type": .string("task_progress"),
                    "data": .object([
                        "taskId": .string("t-1"), "experimentId": .string("exp-1"), "progressPercent": .number("50.0"),
                    ]),
                ])
            )
            try await node.publish(Events.system(note: "end"))
            for socket in [experiment, project, owner] {
                try await Self.expectNext(socket, isEvent: "experiment_created", id: "id", "exp-1")
            }
            for socket in [task, experiment, project, owner] {
                try await Self.expectNext(socket, isEvent: "task_updated", id: "id", "t-1")
                try await Self.expectNext(socket, isEvent: "task_progress", id: "taskId", "t-1")
            }
            for socket in sockets {
                try await Self.expectSentinel(socket, "end", because: "nothing else is addressed here")
            }
        }
    }

    @Test("explicit routing fields let a task reach project and user subscribers")
    func explicitRouting() async throws {
        try await TestGateway.with { node in
            let project = try await node.connect("/ws/projects/p-9", user: "member", projects: ["p-9"])
            let owner = try await node.connect("/ws/user", user: "u-9")
            let otherProject = try await node.connect("/ws/projects/p-8", user: "member2", projects: ["p-8"])
            let otherUser = try await node.connect("/ws/user", user: "u-8")
            let sockets = [project, owner, otherProject, otherUser]
            defer { sockets.forEach { $0.close() } }
            var event = Events.task(id: "t-5", experiment: "exp-unknown")
            if case .object(var object) = event {
                object["routing"] = .object(["projectId": .string("p-9"), "ownerId": .string("u-9")])
                event = .object(object)
            }
            try await node.publish(event)
            try await node.publish(Events.system(note: "end"))
            for socket in [project, owner] {
                try await Self.expectNext(socket, isEvent: "task_updated", id: "id", "t-5")
            }
            for socket in sockets {
                try await Self.expectSentinel(socket, "end", because: "the routing fields name p-9 and u-9 only")
            }
        }
    }

    @Test("worker events reach worker and system subscribers (admins)")
    func workerRouting() async throws {
        try await TestGateway.with { node in
            let worker = try await node.connect("/ws/workers/w-1", user: "ops", roles: ["admin"])
            let system = try await node.connect("/ws/system", user: "ops2", roles: ["admin"])
            let project = try await node.connect("/ws/projects/p-1", user: "member", projects: ["p-1"])
            let sockets = [worker, system, project]
            defer { sockets.forEach { $0.close() } }
            try await node.publish(Events.worker(id: "w-1"))
            try await node.publish(Events.system(note: "end"))
            try await Self.expectNext(worker, isEvent: "worker_updated", id: "id", "w-1")
            try await Self.expectNext(system, isEvent: "worker_updated", id: "id", "w-1")
            for socket in sockets {
                try await Self.expectSentinel(socket, "end", because: "a worker event leaked")
            }
        }
    }

    @Test("system events reach every connection, subscribed or not")
    func systemRouting() async throws {
        try await TestGateway.with { node in
            let bare = try await node.connect("/ws", user: "a")
            let experiment = try await node.connect("/ws/experiments/exp-1", user: "b")
            defer { [bare, experiment].forEach { $0.close() } }
            try await node.publish(Events.system(note: "maintenance"))
            for socket in [bare, experiment] {
                try await Self.expectSentinel(socket, "maintenance", because: "system events are for everyone")
            }
        }
    }

    @Test("user notifications reach only that user")
    func userNotifications() async throws {
        try await TestGateway.with { node in
            let alice = try await node.connect("/ws/user", user: "alice")
            let bob = try await node.connect("/ws/user", user: "bob")
            defer { [alice, bob].forEach { $0.close() } }
            try await node.publish(Events.notification(user: "alice", title: "quota"))
            try await node.publish(Events.system(note: "end"))
            try await Self.expectNext(alice, isEvent: "user_notification", id: "userId", "alice")
            try await Self.expectSentinel(alice, "end", because: "one notification only")
            try await Self.expectSentinel(bob, "end", because: "bob must not see alice's notification")
        }
    }

    @Test("an event matching several subscriptions of one connection arrives once")
    func atMostOnce() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws/experiments/exp-1", user: "u-1", projects: ["p-1"])
            defer { socket.close() }
            _ = try await node.subscribe(socket, "project", "p-1")
            _ = try await node.subscribe(socket, "user", nil)
            _ = try await node.subscribe(socket, "task", "t-1")
            try await node.publish(Events.experiment(id: "exp-1", project: "p-1", owner: "u-1"))
            try await node.publish(Events.task(id: "t-1", experiment: "exp-1"))
            try await node.publish(Events.system(note: "end"))
            try await Self.expectNext(socket, isEvent: "experiment_updated", id: "id", "exp-1")
            try await Self.expectNext(socket, isEvent: "task_updated", id: "id", "t-1")
            try await Self.expectSentinel(socket, "end", because: "each event must arrive once")
        }
    }

    @Test("1,000 events arrive in ingestion order")
    func orderOverAThousandEvents() async throws {
        try await TestGateway.with { node in
            let project = try await node.connect("/ws/projects/p-1", user: "member", projects: ["p-1"])
            let experiment = try await node.connect("/ws/experiments/exp-1", user: "u-1")
            defer { [project, experiment].forEach { $0.close() } }
            try await node.publish(Events.experiment("experiment_created", id: "exp-1", project: "p-1", owner: "u-1"))
            for batch in 0..<10 {
                let events: [JSONValue] = (0..<100).map { offset in
                    .object([
                        "type": .string("experiment_progress"),
                        "data": .object([
                            "experimentId": .string("exp-1"), "completedTasks": .integer(batch * 100 + offset),
                        ]),
                    ])
                }
                try await node.publish(.array(events))
            }
            for socket in [project, experiment] {
                _ = try await socket.nextMessage()  // experiment_created
                var received: [Int] = []
                for _ in 0..<1000 {
                    let message = try await socket.nextMessage()
                    received.append(Int(message["data"]?["completedTasks"]?.doubleValue ?? -1))
                }
                #expect(
                    received == Array(0..<1000),
                    "first out-of-order index: \(String(describing: zip(received, 0...).first { $0 != $1 }))")
            }
        }
    }

    @Test("authorization: users see only their own and their projects' events; admins see all")
    func authorization() async throws {
        try await TestGateway.with { node in
            // Both watch exp-b, which belongs to bob in project p-b.
            let alice = try await node.connect("/ws/experiments/exp-b", user: "alice", projects: ["p-a"])
            let bob = try await node.connect("/ws/experiments/exp-b", user: "bob")
            let member = try await node.connect("/ws/experiments/exp-b", user: "carol", projects: ["p-b"])
            let admin = try await node.connect("/ws/experiments/exp-b", user: "root", roles: ["admin"])
            let sockets = [alice, bob, member, admin]
            defer { sockets.forEach { $0.close() } }

            try await node.publish(Events.experiment(id: "exp-b", project: "p-b", owner: "bob"))
            try await node.publish(Events.task(id: "t-b", experiment: "exp-b"))
            try await node.publish(Events.system(note: "end"))
            for socket in [bob, member, admin] {
                try await Self.expectNext(socket, isEvent: "experiment_updated", id: "id", "exp-b")
                try await Self.expectNext(socket, isEvent: "task_updated", id: "id", "t-b")
            }
            for socket in sockets {
                try await Self.expectSentinel(socket, "end", because: "alice must not see bob's events")
            }

            // Subscribing to someone else's user stream or a foreign project is refused.
            let refusedUser = try await node.subscribe(alice, "user", "bob")
            #expect(refusedUser["type"]?.stringValue == "error")
            let refusedProject = try await node.subscribe(alice, "project", "p-b")
            #expect(refusedProject["type"]?.stringValue == "error")
            let refusedSystem = try await node.subscribe(alice, "system", nil)
            #expect(refusedSystem["type"]?.stringValue == "error")
            let adminUser = try await node.subscribe(admin, "user", "bob")
            #expect(adminUser["data"]?["status"]?.stringValue == "success")
        }
    }

    @Test("a path subscription the token does not allow is refused with 1008")
    func forbiddenPath() async throws {
        try await TestGateway.with { node in
            let token = try await node.token("alice", projects: ["p-a"])
            let socket = try await RawWebSocket.connect(port: node.port, path: "/ws/projects/p-b?token=\(token)")
            defer { socket.close() }
            let message = try await socket.nextMessage()
            #expect(message["type"]?.stringValue == "error")
            #expect(message["error"]?.stringValue == "Not authorized for project p-b")
            let close = try await socket.expectClose()
            #expect(close.code == 1008)
        }
    }
}
