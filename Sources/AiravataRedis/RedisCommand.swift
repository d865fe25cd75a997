import CHiredis
public import NIOCore

/// One Redis command as its arguments; encoded to RESP by hiredis.
public struct RedisCommand: Sendable, Equatable {
    public var arguments: [[UInt8]]

    public init(_ name: String, _ arguments: [RedisArgument] = []) {
        self.arguments = [Array(name.utf8)] + arguments.map(\.bytes)
    }

    public init(_ name: String, _ arguments: RedisArgument...) {
        self.init(name, arguments)
    }

    public var name: String { String(decoding: arguments.first ?? [], as: UTF8.self) }

    /// The RESP bytes, via `redisFormatCommandArgv`.
    public func encoded() -> ByteBuffer {
        var lengths = arguments.map { $0.count }
        // One buffer of the exact size: a publish call carries a whole batch of events, and
        // growing by doubling made several large allocations (and glibc consolidations) each.
        var joined: [UInt8] = []
        joined.reserveCapacity(lengths.reduce(0, +))
        for argument in arguments { joined.append(contentsOf: argument) }
        return joined.withUnsafeBufferPointer { bytes in
            var offsets: [Int] = []
            var position = 0
            for length in lengths {
                offsets.append(position)
                position += length
            }
            let base = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var pointers: [UnsafePointer<CChar>?] = offsets.map {
                base.advanced(by: $0).assumingMemoryBound(to: CChar.self)
            }
            var target: UnsafeMutablePointer<CChar>?
            let count = redisFormatCommandArgv(&target, Int32(arguments.count), &pointers, &lengths)
            guard count >= 0, let target else { fatalError("hiredis could not format a command (out of memory)") }
            defer { redisFreeCommand(target) }
            return ByteBuffer(bytes: UnsafeRawBufferPointer(start: target, count: Int(count)))
        }
    }
}

/// A command argument: text, bytes or a number.
public struct RedisArgument: Sendable, Equatable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    public let bytes: [UInt8]

    public init(_ string: String) { bytes = Array(string.utf8) }
    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ buffer: ByteBuffer) { bytes = Array(buffer.readableBytesView) }
    public init(_ value: some BinaryInteger) { bytes = Array(String(value).utf8) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
}
