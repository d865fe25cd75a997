import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Testing

@Suite("Subscribe and unsubscribe")
struct SubscriptionTests {
    @Test("subscribe gets the spec's 'subscribed' reply and events start flowing")
    func subscribeReply() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice", projects: ["p-1"])
            defer { socket.close() }
            let reply = try await node.subscribe(socket, "experiment", "exp-7")
            #expect(reply["type"]?.stringValue == "system_status")
            #expect(reply["data"]?["action"]?.stringValue == "subscribed")
            #expect(reply["data"]?["resourceType"]?.stringValue == "experiment")
            #expect(reply["data"]?["resourceId"]?.stringValue == "exp-7")
            #expect(reply["data"]?["status"]?.stringValue == "success")
            try await node.publish(Events.experiment(id: "exp-7", project: "p-1", owner: "bob"))
            let event = try await socket.nextMessage()
            #expect(event["data"]?["experiment"]?["id"]?.stringValue == "exp-7")
        }
    }

    @Test("unsubscribe gets 'unsubscribed' and stops the events")
    func unsubscribeReply() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice", projects: ["p-1"])
            defer { socket.close() }
            _ = try await node.subscribe(socket, "experiment", "exp-7")
            _ = try await node.subscribe(socket, "experiment", "exp-8")
            try await socket.send(
                .object([
                    "type": .string("system_status"),
                    "data": .object([
                        "action": .string("unsubscribe"), "resourceType": .string("experiment"),
                        "resourceId": .string("exp-7"),
                    ]),
                ])
            )
            let reply = try await socket.nextMessage()
            #expect(reply["data"]?["action"]?.stringValue == "unsubscribed")
            #expect(reply["data"]?["resourceId"]?.stringValue == "exp-7")
            #expect(reply["data"]?["status"]?.stringValue == "success")
            try await node.publish(Events.experiment(id: "exp-7", project: "p-1", owner: "bob"))
            try await node.publish(Events.experiment(id: "exp-8", project: "p-1", owner: "bob"))
            let next = try await socket.nextMessage()
            #expect(next["data"]?["experiment"]?["id"]?.stringValue == "exp-8", "exp-7 arrived after unsubscribing")
        }
    }

    @Test("malformed subscription requests get an error and the connection stays open")
    func malformedSubscription() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            let requests: [JSONObject] = [
                ["action": .string("subscribe"), "resourceType": .string("galaxy"), "resourceId": .string("x")],
                ["action": .string("subscribe"), "resourceType": .string("experiment")],
                ["action": .string("dance"), "resourceType": .string("experiment"), "resourceId": .string("x")],
            ]
            for data in requests {
                try await socket.send(.object(["type": .string("system_status"), "data": .object(data)]))
                let reply = try await socket.nextMessage()
                #expect(reply["type"]?.stringValue == "error")
                #expect(reply["error"]?.stringValue?.hasPrefix("Invalid subscription request") == true)
            }
            let still = try await node.subscribe(socket, "task", "t-1")
            #expect(still["data"]?["status"]?.stringValue == "success")
        }
    }

    @Test("the per-connection subscription limit is enforced")
    func subscriptionLimit() async throws {
        try await TestGateway.with(
            gateway: .init(nodeID: "n", maxSubscriptionsPerConnection: 3, statsIntervalSeconds: 0)
        ) { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            for index in 0..<3 {
                let reply = try await node.subscribe(socket, "task", "t-\(index)")
                #expect(reply["data"]?["status"]?.stringValue == "success")
            }
            let refused = try await node.subscribe(socket, "task", "t-9")
            #expect(refused["type"]?.stringValue == "error")
            #expect(refused["error"]?.stringValue?.contains("Subscription limit") == true)
        }
    }

    @Test("a status request (system_status without action) returns the statistics")
    func statusRequest() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            try await socket.send(.object(["type": .string("system_status")]))
            let status = try await socket.nextMessage()
            #expect(status["type"]?.stringValue == "system_status")
            #expect(status["data"]?["activeConnections"]?.doubleValue == 1)
        }
    }
}
