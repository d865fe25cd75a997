import AiravataClient
import AiravataCore
import AiravataProtocol
import AiravataServer
import AiravataTestSupport
import Foundation
import Testing

/// HTTP/1.1 pipelining, answered by the gateway's own request handler (NIO's pipelining
/// handler is not used: it withheld reads around every request): every request that arrives
/// while another is answered is answered after it, in order, and nothing is lost.
@Suite("HTTP/1.1 pipelining: answers in order, nothing dropped")
struct HTTPPipeliningTests {
    /// The status lines and bodies of `count` responses read from `socket`, in order.
    static func responses(_ socket: RawTCP, count: Int) async throws -> [(status: String, body: String)] {
        var parsed: [(String, String)] = []
        _ = await eventually {
            // Everything received so far (`read(until: "")` returns at once).
            parsed = Self.split((try? await socket.read(until: "", timeout: .seconds(1))) ?? "")
            return parsed.count >= count
        }
        return parsed
    }

    /// Splits a stream of responses by their content-length.
    static func split(_ text: String) -> [(String, String)] {
        wholeResponses(text).responses.map { ($0.head.components(separatedBy: "\r\n").first ?? "", $0.body) }
    }

    /// The whole responses at the start of `text` (head and body, by content-length), and how
    /// many bytes they take; a response cut short ends the walk.
    static func wholeResponses(_ text: String) -> (responses: [(head: String, body: String)], bytes: Int) {
        var responses: [(head: String, body: String)] = []
        var rest = Substring(text)
        while let headEnd = rest.range(of: "\r\n\r\n") {
            let head = rest[..<headEnd.lowerBound]
            let length =
                head.split(separator: "\r\n")
                .first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let bodyStart = headEnd.upperBound
            guard rest.utf8.distance(from: bodyStart, to: rest.endIndex) >= length else { break }
            let bodyEnd = rest.utf8.index(bodyStart, offsetBy: length)
            responses.append((String(head), String(rest[bodyStart..<bodyEnd])))
            rest = rest[bodyEnd...]
        }
        return (responses, text.utf8.count - rest.utf8.count)
    }

    /// An ingestion request carrying `body`.
    static func post(_ body: String, token: String) -> String {
        "POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    @Test("three requests in one write, one of them an event that waits for the bus: three answers, in order")
    func inOrder() async throws {
        try await TestGateway.with { node in
            let token = try await node.serviceToken()
            let event = Events.system(note: "pipelined").jsonString
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let requests =
                "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n" + Self.post(event, token: token)
                + "GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n"
            try await socket.send(requests)
            let answers = try await Self.responses(socket, count: 3)
            #expect(answers.map(\.status) == ["HTTP/1.1 200 OK", "HTTP/1.1 202 Accepted", "HTTP/1.1 200 OK"])
            #expect(answers.first?.body.contains("\"ok\"") == true, "\(answers)")
            #expect(answers.dropFirst().first?.body.contains("\"accepted\":1") == true, "\(answers)")
            #expect(answers.last?.body.contains("ready") == true, "\(answers)")
        }
    }

    @Test("a burst of 200 pipelined events is answered 200 times, in order, and all are accepted")
    func burst() async throws {
        try await TestGateway.with { node in
            let token = try await node.serviceToken()
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let requests = (0..<200).map { Self.post(Events.system(note: "burst-\($0)").jsonString, token: token) }
                .joined()
            try await socket.send(requests)
            let answers = try await Self.responses(socket, count: 200)
            #expect(answers.count == 200)
            #expect(answers.allSatisfy { $0.status == "HTTP/1.1 202 Accepted" }, "\(answers.map(\.status))")
            // Cursors grow: the events were accepted in the order they were sent.
            let cursors = answers.compactMap { answer -> String? in
                (try? JSONValue(parsing: answer.body))?["cursors"]?.arrayValue?.first?.stringValue
            }
            #expect(cursors.count == 200)
            let parsed = cursors.compactMap(EventCursor.init)
            #expect(parsed.count == 200 && zip(parsed, parsed.dropFirst()).allSatisfy { $0 < $1 }, "\(cursors)")
        }
    }

    @Test("1,000 pipelined requests answered at once (bad JSON: 400 each) are all answered, in order")
    func immediateAnswers() async throws {
        try await TestGateway.with { node in
            let token = try await node.serviceToken()
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let requests = (0..<1000).map { Self.post("not json \($0)", token: token) }.joined()
            try await socket.send(requests)
            let answers = try await Self.responses(socket, count: 1000)
            #expect(answers.count == 1000)
            #expect(answers.allSatisfy { $0.status == "HTTP/1.1 400 Bad Request" }, "\(Set(answers.map(\.status)))")
            #expect(socket.isOpen, "the node closed a connection whose requests it answered")
            #expect(try await node.http.request(method: "GET", path: "/healthz").status == 200)
        }
    }

    @Test("past the bound on held request parts the connection is closed and counted, the node serves on")
    func heldPartsBound() async throws {
        // Lowered so that one read reaches it: the first request is answered by a task, so the
        // rest of the read (8 of its parts may wait) arrives while it is still being answered.
        var server = ServerConfiguration()
        server.maxHeldRequestParts = 8
        try await TestGateway.with(server: server) { node in
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            let requests = String(repeating: "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", count: 40)
            try await socket.send(requests)
            let (text, closed) = try await socket.readUntilClosed(timeout: .seconds(15))
            #expect(closed, "the node kept a connection past the bound on held requests")
            let answered = text.components(separatedBy: "HTTP/1.1 200").count - 1
            #expect(answered < 40, "all 40 answered: the bound was never reached")
            let metrics = try await node.http.request(method: "GET", path: "/metrics")
            #expect(metrics.bodyString.contains("airavata_http_refused_total{reason=\"pipelined\"} 1"))
        }
    }

    @Test("an upgrade pipelined behind a plain request is answered after it (200, then 101)")
    func upgradeBehindRequest() async throws {
        try await TestGateway.with { node in
            let token = try await node.token("alice")
            let socket = try await RawTCP.connect(port: node.port)
            defer { socket.close() }
            try await socket.send(
                "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    + "GET /ws?token=\(token) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                    + "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            let text = try await socket.read(until: "101 Switching Protocols", timeout: .seconds(15))
            let ok = try #require(text.range(of: "HTTP/1.1 200"))
            let switched = try #require(text.range(of: "HTTP/1.1 101"))
            #expect(ok.lowerBound < switched.lowerBound, "\(text)")
        }
    }

    /// One kind of request in a random pipeline, and the statuses its answer may have.
    enum Kind: CaseIterable {
        case health, head, event, badJSON, noToken, tooLarge, notFound, close

        /// After these the node closes the connection: nothing later is answered.
        var closes: Bool { self == .noToken || self == .tooLarge || self == .close }

        func request(_ index: Int, token: String) -> (text: String, statuses: Set<String>) {
            switch self {
            case .health: return ("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", ["200"])
            case .head: return ("HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", ["200"])
            case .event:
                let body = Events.system(note: "random-\(index)").jsonString
                return (HTTPPipeliningTests.post(body, token: token), ["202"])
            case .badJSON:
                let body = "{nope \(index)"
                return (HTTPPipeliningTests.post(body, token: token), ["400"])
            case .noToken:
                return ("POST /api/v1/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}", ["401"])
            case .tooLarge:
                return (HTTPPipeliningTests.post(String(repeating: "x", count: 3000), token: token), ["413"])
            case .notFound: return ("GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n", ["404"])
            case .close:
                return ("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", ["200"])
            }
        }
    }

    /// The status of each answer in `text`, reading bodies by content-length, except after a
    /// HEAD (which carries none).
    static func statuses(_ text: String, kinds: [Kind]) -> [String] {
        var statuses: [String] = []
        var rest = Substring(text)
        while let headEnd = rest.range(of: "\r\n\r\n") {
            let lines = String(rest[..<headEnd.lowerBound]).components(separatedBy: "\r\n")
            statuses.append(lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? "?")
            let length =
                lines.first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let body = statuses.count <= kinds.count && kinds[statuses.count - 1] == .head ? 0 : length
            guard rest.utf8.distance(from: headEnd.upperBound, to: rest.endIndex) >= body else { break }
            rest = rest[rest.utf8.index(headEnd.upperBound, offsetBy: body)...]
        }
        return statuses
    }

    @Test("random pipelines (fixed seeds) of mixed requests, sent in random pieces, are answered one for one, in order")
    func randomPipelines() async throws {
        var server = ServerConfiguration()
        server.maxBodySize = 2048
        try await TestGateway.with(server: server) { node in
            let token = try await node.serviceToken()
            var random = SplitMix(seed: 6)
            for trial in 0..<60 {
                var kinds: [Kind] = []
                var text = ""
                var allowed: [Set<String>] = []
                for index in 0..<(1 + random.next(40)) {
                    let kind = Kind.allCases[random.next(Kind.allCases.count)]
                    let request = kind.request(index, token: token)
                    kinds.append(kind)
                    text += request.text
                    allowed.append(request.statuses)
                    if kind.closes { break }
                }
                let bytes = Array(text.utf8)
                let socket = try await RawTCP.connect(port: node.port)
                defer { socket.close() }
                // Up to four pieces, cut anywhere (inside a head, a body, between requests).
                let cuts = (0..<3).map { _ in random.next(bytes.count) }.sorted()
                var start = 0
                for cut in cuts + [bytes.count] where cut > start {
                    try? await socket.send(Array(bytes[start..<cut]))
                    start = cut
                }
                var got: [String] = []
                _ = await eventually {
                    got = Self.statuses((try? await socket.read(until: "", timeout: .seconds(1))) ?? "", kinds: kinds)
                    return got.count >= kinds.count
                }
                let matches = got.count == kinds.count && zip(got, allowed).allSatisfy { $1.contains($0) }
                #expect(matches, "trial \(trial): sent \(kinds), answered \(got)")
                if !matches { break }
            }
            #expect(try await node.http.request(method: "GET", path: "/healthz").status == 200)
        }
    }

    /// A small deterministic generator, so that a failing trial can be replayed.
    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(max(bound, 1)))
        }
    }
}
