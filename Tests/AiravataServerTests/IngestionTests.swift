import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import NIOCore
import Testing

@Suite("Ingestion API: bad input gets a clear 4xx and the node serves on")
struct IngestionTests {
    static func post(_ node: TestGateway, body: String, token: String?) async throws -> GatewayHTTPClient.Response {
        var headers = [("content-type", "application/json")]
        if let token { headers.append(("authorization", "Bearer \(token)")) }
        return try await node.http.request(
            method: "POST", path: "/api/v1/events", headers: headers, body: ByteBuffer(string: body))
    }

    static func errorBody(_ response: GatewayHTTPClient.Response) throws -> JSONValue {
        let body = try JSONValue(parsing: response.bodyString)
        #expect(body["error"]?.stringValue?.isEmpty == false, "error body: \(response.bodyString)")
        return body
    }

    @Test("one event or an array; 202 with the assigned ids and cursors")
    func accepted() async throws {
        try await TestGateway.with { node in
            let single = try await node.publish(Events.experiment(id: "exp-1", project: "p", owner: "u"))
            #expect(single["accepted"]?.doubleValue == 1)
            #expect(single["ids"]?.arrayValue?.first?.stringValue?.hasPrefix("exp_exp-1_") == true)
            let batch = try await node.publish(
                .array([Events.task(id: "t-1", experiment: "exp-1"), Events.worker(id: "w-1")])
            )
            #expect(batch["ids"]?.arrayValue?.count == 2)
            #expect(batch["cursors"]?.arrayValue?.count == 2)
            let explicit = try await node.publish(
                .object([
                    "type": .string("system_status"), "id": .string("my-id"),
                    "timestamp": .string("2025-01-01T00:00:00Z"), "data": .object([:]),
                ])
            )
            #expect(explicit["ids"]?.arrayValue?.first?.stringValue == "my-id")
        }
    }

    @Test("an event's data reaches subscribers as the producer wrote it, or written again when not compact")
    func dataAsWritten() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws/projects/p-1", user: "ops", roles: ["admin"])
            defer { socket.close() }
            let response = try await node.http.publish(json: DataAsWritten.body, token: try await node.serviceToken())
            #expect(response.status == 202, "\(response.bodyString)")
            try DataAsWritten.expect(
                try await socket.nextText(ofType: "task_updated"), try await socket.nextText(ofType: "task_updated"))
        }
    }

    @Test("validation errors name the field and answer 400")
    func validation() async throws {
        try await TestGateway.with { node in
            let token = try await node.serviceToken()
            let cases: [(body: String, field: String?)] = [
                ("{\"type\": ", nil),
                ("42", nil),
                ("[]", nil),
                (#"{"data":{}}"#, "type"),
                (#"{"type":"experiment_exploded","data":{}}"#, "type"),
                (#"{"type":"ping","data":{}}"#, "type"),
                (#"{"type":"experiment_updated"}"#, "data"),
                (#"{"type":"experiment_updated","data":[]}"#, "data"),
                (#"{"type":"experiment_updated","data":{"experiment":{"name":"x"}}}"#, "data.experiment.id"),
                (#"{"type":"experiment_progress","data":{"completedTasks":1}}"#, "data.experimentId"),
                (#"{"type":"task_updated","data":{"task":{"id":""}}}"#, "data.task.id"),
                (#"{"type":"task_progress","data":{}}"#, "data.taskId"),
                (#"{"type":"worker_offline","data":{"worker":{}}}"#, "data.worker.id"),
                (#"{"type":"user_notification","data":{"title":"x"}}"#, "data.userId"),
                (#"{"type":"system_status","data":{},"timestamp":"yesterday"}"#, "timestamp"),
                (#"{"type":"system_status","data":{},"id":7}"#, "id"),
                (
                    #"[{"type":"system_status","data":{}},{"type":"task_updated","data":{"task":{}}}]"#,
                    "[1].data.task.id"
                ),
            ]
            for (body, field) in cases {
                let response = try await Self.post(node, body: body, token: token)
                #expect(response.status == 400, "body \(body) answered \(response.status)")
                let error = try Self.errorBody(response)
                #expect(error["field"]?.stringValue == field, "body \(body): \(response.bodyString)")
            }
        }
    }

    @Test("no token 401, bad token 401, wrong role 403")
    func authentication() async throws {
        try await TestGateway.with { node in
            let body = Events.system(note: "x").jsonString
            let missing = try await Self.post(node, body: body, token: nil)
            #expect(missing.status == 401)
            #expect(try Self.errorBody(missing)["error"]?.stringValue == "Authentication required")
            let invalid = try await Self.post(node, body: body, token: "nope")
            #expect(invalid.status == 401)
            #expect(try Self.errorBody(invalid)["error"]?.stringValue == "Invalid or expired token")
            let user = try await Self.post(node, body: body, token: try await node.token("alice"))
            #expect(user.status == 403)
            _ = try Self.errorBody(user)
        }
    }

    @Test("a 10 MB body gets 413; the node keeps serving and delivering")
    func oversizedBody() async throws {
        try await TestGateway.with { node in
            let socket = try await node.connect("/ws", user: "alice")
            defer { socket.close() }
            let huge = #"{"type":"system_status","data":{"pad":""# + String(repeating: "x", count: 10 << 20) + #""}}"#
            let response = try await Self.post(node, body: huge, token: try await node.serviceToken())
            #expect(response.status == 413)
            _ = try Self.errorBody(response)

            let health = try await node.http.request(method: "GET", path: "/healthz")
            #expect(health.status == 200)
            try await node.publish(Events.system(note: "still here"))
            let message = try await socket.nextMessage()
            #expect(message["data"]?["notice"]?.stringValue == "still here")
        }
    }

    @Test("health, readiness, metrics, statistics and unknown paths")
    func operationalEndpoints() async throws {
        try await TestGateway.with { node in
            #expect(try await node.http.request(method: "GET", path: "/healthz").status == 200)
            #expect(try await node.http.request(method: "GET", path: "/readyz").status == 200)
            let metrics = try await node.http.request(method: "GET", path: "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.bodyString.contains("airavata_connections_active"))
            let stats = try await node.http.request(method: "GET", path: "/api/v1/stats")
            let body = try JSONValue(parsing: stats.bodyString)
            let reference = try JSONValue(parsing: SpecReferences.systemStatus)
            #expect(
                shapeDifferences(
                    withoutAdditions(
                        .object([
                            "type": .string("system_status"), "id": .string("x"), "timestamp": .string("x"),
                            "data": body,
                        ])), reference) == [])
            #expect(try await node.http.request(method: "GET", path: "/nope").status == 404)
            #expect(try await node.http.request(method: "GET", path: "/ws/user").status == 426)
            #expect(try await node.http.request(method: "DELETE", path: "/api/v1/events").status == 405)
        }
    }
}
