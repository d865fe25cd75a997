import AiravataRedis
import NIOCore
import Testing

@Suite("RESP replies decoded by hiredis")
struct RedisReplyParserTests {
    static func parse(_ chunks: [String]) throws -> [RedisReply] {
        let parser = RedisReplyParser()
        var replies: [RedisReply] = []
        for chunk in chunks {
            try parser.feed(ByteBuffer(string: chunk))
            while let reply = try parser.next() { replies.append(reply) }
        }
        return replies
    }

    @Test("scalars: status, error, integer, bulk, nil")
    func scalars() throws {
        let replies = try Self.parse(["+OK\r\n-ERR wrong type\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n$0\r\n\r\n"])
        #expect(
            replies == [
                .status("OK"), .error("ERR wrong type"), .integer(-42), .bulk(ByteBuffer(string: "hello")), .null,
                .bulk(ByteBuffer()),
            ])
    }

    @Test("nested arrays, empty and nil arrays")
    func arrays() throws {
        let replies = try Self.parse(["*3\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n+x\r\n$-1\r\n*0\r\n*-1\r\n"])
        #expect(
            replies == [
                .array([.integer(1), .array([.bulk(ByteBuffer(string: "a")), .array([.status("x")])]), .null]),
                .array([]),
                .null,
            ])
    }

    @Test("an array header announcing more elements than the bound is a protocol error, not a 16 GiB allocation")
    func hugeArrayHeader() throws {
        #expect(throws: RedisError.self) { try Self.parse(["*2147483647\r\n"]) }
        #expect(throws: RedisError.self) { try Self.parse(["*\(RedisReplyParser.maxArrayElements + 1)\r\n"]) }
        // At the bound itself the reader still waits for the elements, as for any array.
        #expect(try Self.parse(["*\(RedisReplyParser.maxArrayElements)\r\n"]) == [])
        // Nested headers are bounded one by one.
        #expect(throws: RedisError.self) { try Self.parse(["*1\r\n*1\r\n*2147483647\r\n"]) }
    }

    @Test("a reply split across reads, even byte by byte, comes out once and whole")
    func splitAcrossReads() throws {
        let wire = "*2\r\n$7\r\nmessage\r\n$11\r\nhello world\r\n:7\r\n"
        let replies = try Self.parse(wire.map { String($0) })
        #expect(
            replies == [
                .array([.bulk(ByteBuffer(string: "message")), .bulk(ByteBuffer(string: "hello world"))]), .integer(7),
            ])
    }

    @Test("a 5 MB bulk string in uneven chunks")
    func largeBulk() throws {
        let payload = String(repeating: "abcdefghij", count: 500_000)
        let wire = "$\(payload.utf8.count)\r\n\(payload)\r\n"
        var chunks: [String] = []
        var rest = Substring(wire)
        var size = 1
        while !rest.isEmpty {
            chunks.append(String(rest.prefix(size)))
            rest = rest.dropFirst(size)
            size = size * 3 % 65_521 + 1
        }
        let replies = try Self.parse(chunks)
        #expect(replies.count == 1)
        #expect(replies.first == .bulk(ByteBuffer(string: payload)))
    }

    @Test("the reader keeps a buffer of a bus batch's size between reads, and gives back a larger one")
    func keptBuffer() throws {
        let parser = RedisReplyParser()
        func roundTrip(_ size: Int) throws {
            let payload = String(repeating: "e", count: size)
            try parser.feed(ByteBuffer(string: "$\(size)\r\n\(payload)\r\n"))
            #expect(try parser.next() == .bulk(ByteBuffer(string: payload)))
            #expect(try parser.next() == nil)
            // The next read finds the buffer empty: this is where hiredis decides to free it.
            try parser.feed(ByteBuffer(string: ":1\r\n"))
            #expect(try parser.next() == .integer(1))
        }
        // Batches of events on the subscriber connection: tens of KiB a read.
        try roundTrip(48 * 1024)
        #expect(parser.bufferCapacity >= 48 * 1024)
        // A long log read: freed once read, so one big reply does not pin its memory.
        try roundTrip(2 * RedisReplyParser.keptBufferLimit)
        #expect(parser.bufferCapacity < RedisReplyParser.keptBufferLimit)
    }

    @Test("garbage is a protocol error, not a crash")
    func garbage() {
        #expect(throws: RedisError.self) { try Self.parse(["?what\r\n"]) }
    }

    @Test("commands are encoded as RESP arrays of bulk strings")
    func commandEncoding() {
        let command = RedisCommand("SET", "key", RedisArgument(bytes: [0, 13, 10]), 42)
        #expect(String(buffer: command.encoded()) == "*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$3\r\n\u{0}\r\n\r\n$2\r\n42\r\n")
        #expect(String(buffer: RedisCommand("PING").encoded()) == "*1\r\n$4\r\nPING\r\n")
        // An empty argument, and one whose length takes six digits (a batch of events).
        let large = [UInt8](repeating: UInt8(ascii: "x"), count: 100_000)
        let batch = RedisCommand("PUBLISH", "", RedisArgument(bytes: large)).encoded()
        let expected = Array("*3\r\n$7\r\nPUBLISH\r\n$0\r\n\r\n$100000\r\n".utf8) + large + Array("\r\n".utf8)
        #expect(Array(batch.readableBytesView) == expected)
    }
}

@Suite("Redis URLs")
struct RedisConfigurationTests {
    @Test("redis, rediss and unix forms")
    func forms() throws {
        let plain = try RedisConfiguration(url: "redis://127.0.0.1:6380/2")
        #expect(plain == RedisConfiguration(endpoint: .tcp(host: "127.0.0.1", port: 6380), database: 2))
        let secret = try RedisConfiguration(url: "rediss://:s3cr%40t@redis.example:6390")
        #expect(secret.password == "s3cr@t")
        #expect(secret.tls)
        #expect(secret.redacted == "rediss://redis.example:6390/0")
        let user = try RedisConfiguration(url: "redis://app:pw@localhost")
        #expect(user.username == "app")
        #expect(user.endpoint == .tcp(host: "localhost", port: 6379))
        let socket = try RedisConfiguration(url: "unix:///run/redis.sock?db=3&password=x")
        #expect(
            socket == RedisConfiguration(endpoint: .unixSocket(path: "/run/redis.sock"), password: "x", database: 3))
    }

    @Test(
        "bad URLs are refused with a reason",
        arguments: ["localhost:6379", "http://x", "redis://", "redis://h/abc", "unix://"])
    func bad(url: String) {
        #expect(throws: RedisError.self) { try RedisConfiguration(url: url) }
    }
}
