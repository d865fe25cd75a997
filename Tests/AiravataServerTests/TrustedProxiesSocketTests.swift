import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Testing

/// `--trusted-proxies` over real sockets: the per-IP limit is what shows which address the
/// node believed, the forwarded one or the peer's.
@Suite("Trusted proxies over real sockets")
struct TrustedProxiesSocketTests {
    static let limitMessage = "Connection limit exceeded: at most 2 connections per IP address"

    static func node(trusting proxies: String) throws -> (ServerConfiguration, GatewayConfiguration) {
        var server = ServerConfiguration()
        server.trustedProxies = try TrustedProxies(proxies)
        let gateway = GatewayConfiguration(
            nodeID: "proxied", limits: .init(perUser: 50, perIP: 2, global: 100), statsIntervalSeconds: 0)
        return (server, gateway)
    }

    /// Opens a WebSocket as if forwarded for `client`; returns it with its first message.
    static func open(_ node: TestGateway, user: String, forwardedFor client: String) async throws
        -> (RawWebSocket, JSONValue)
    {
        let token = try await node.token(user)
        let socket = try await RawWebSocket.connect(
            port: node.port, path: "/ws?token=\(token)", headers: [("X-Forwarded-For", client)])
        return (socket, try await socket.nextMessage())
    }

    static func expectAdmitted(_ message: JSONValue, _ what: String) {
        #expect(message["data"]?["action"]?.stringValue == "connected", "\(what): got \(message.jsonString)")
    }

    static func expectRefused(_ message: JSONValue, _ what: String) {
        #expect(message["error"]?.stringValue == limitMessage, "\(what): got \(message.jsonString)")
    }

    @Test("from a trusted peer, X-Forwarded-For is the address the per-IP limit counts")
    func trustedPeer() async throws {
        let (server, gateway) = try Self.node(trusting: "127.0.0.1")
        try await TestGateway.with(server: server, gateway: gateway) { node in
            var sockets: [RawWebSocket] = []
            defer { sockets.forEach { $0.close() } }
            for index in 0..<2 {
                let (socket, first) = try await Self.open(node, user: "u\(index)", forwardedFor: "203.0.113.9")
                sockets.append(socket)
                Self.expectAdmitted(first, "connection \(index + 1) for 203.0.113.9")
            }
            let (third, refused) = try await Self.open(node, user: "u2", forwardedFor: "203.0.113.9")
            sockets.append(third)
            Self.expectRefused(refused, "a third connection for 203.0.113.9")
            // Same peer (the proxy), another client behind it: its own count.
            let (other, admitted) = try await Self.open(
                node, user: "u3", forwardedFor: "198.51.100.4, 203.0.113.10")
            sockets.append(other)
            Self.expectAdmitted(admitted, "the first connection for 203.0.113.10 (right-most hop)")
        }
    }

    @Test("from an untrusted peer, X-Forwarded-For is a spoof: every connection counts for the peer")
    func untrustedPeer() async throws {
        let (server, gateway) = try Self.node(trusting: "10.0.0.0/8")
        try await TestGateway.with(server: server, gateway: gateway) { node in
            var sockets: [RawWebSocket] = []
            defer { sockets.forEach { $0.close() } }
            for (index, spoof) in ["203.0.113.1", "203.0.113.2"].enumerated() {
                let (socket, first) = try await Self.open(node, user: "u\(index)", forwardedFor: spoof)
                sockets.append(socket)
                Self.expectAdmitted(first, "connection \(index + 1) from 127.0.0.1")
            }
            let (third, refused) = try await Self.open(node, user: "u2", forwardedFor: "203.0.113.3")
            sockets.append(third)
            Self.expectRefused(refused, "a third connection from 127.0.0.1 claiming to be 203.0.113.3")
        }
    }
}
