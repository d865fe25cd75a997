import AiravataClient
import AiravataTestSupport
import Testing

/// What docs/openapi.yaml promises that schemathesis (`.ci/api-contract`) found missing.
@Suite("HTTP API contract")
struct HTTPContractTests {
    @Test(
        "a 405 names the allowed methods (RFC 9110)",
        arguments: [
            ("TRACE", "/healthz", "GET, HEAD"), ("PUT", "/readyz", "GET, HEAD"), ("DELETE", "/api/v1/stats", "GET"),
            ("GET", "/api/v1/events", "POST"),
        ])
    func methodNotAllowed(method: String, path: String, allowed: String) async throws {
        try await TestGateway.with { node in
            let response = try await node.http.request(method: method, path: path)
            #expect(response.status == 405, "\(method) \(path) answered \(response.status)")
            let allow = response.headers.first { $0.0.lowercased() == "allow" }?.1
            #expect(allow == allowed, "\(method) \(path): expected Allow \(allowed), got \(allow ?? "none")")
        }
    }
}
