import AiravataServer
import NIOHTTP1
import Testing

@Suite("Client addresses behind trusted proxies")
struct TrustedProxiesTests {
    @Test("X-Forwarded-For is believed from a trusted peer only, and only when it holds addresses")
    func forwardedFor() throws {
        let proxies = try TrustedProxies("10.0.0.0/8, 127.0.0.1")
        func client(_ peer: String, _ forwarded: String?) -> String {
            var headers = HTTPHeaders()
            if let forwarded { headers.add(name: "X-Forwarded-For", value: forwarded) }
            return proxies.clientIP(peer: peer, headers: headers)
        }
        #expect(client("127.0.0.1", "203.0.113.9") == "203.0.113.9")
        #expect(client("127.0.0.1", "198.51.100.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9", "right-most untrusted hop")
        #expect(client("192.0.2.7", "203.0.113.9") == "192.0.2.7", "an untrusted peer's header is a spoof")
        #expect(client("127.0.0.1", nil) == "127.0.0.1")
        // A hop that is no address would become a limit key and a Redis key name.
        #expect(client("127.0.0.1", "user:alice\nforged") == "127.0.0.1")
        #expect(client("127.0.0.1", "203.0.113.9, not-an-ip") == "127.0.0.1")
        #expect(client("127.0.0.1", "2001:db8::1") == "2001:db8::1")
    }
}
