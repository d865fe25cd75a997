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

    /// The RESP bytes, via `redisFormatSdsCommandArgv`: hiredis's encoder that writes the
    /// lengths itself, where `redisFormatCommandArgv` calls `sprintf` for each argument (about
    /// 1 % of a node in a connect storm, each admission being one script call). The argument
    /// vectors hiredis reads are on the stack.
    public func encoded() -> ByteBuffer {
        // One buffer of the exact size: a publish call carries a whole batch of events, and
        // growing by doubling made several large allocations (and glibc consolidations) each.
        var joined: [UInt8] = []
        joined.reserveCapacity(arguments.reduce(0) { $0 + $1.count })
        for argument in arguments { joined.append(contentsOf: argument) }
        let count = arguments.count
        return joined.withUnsafeBufferPointer { bytes in
            withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { pointers in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                    let base = UnsafeRawPointer(bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                    var position = 0
                    for (index, argument) in arguments.enumerated() {
                        pointers[index] = base.advanced(by: position).assumingMemoryBound(to: CChar.self)
                        lengths[index] = argument.count
                        position += argument.count
                    }
                    var target: sds?
                    let length = redisFormatSdsCommandArgv(
                        &target, Int32(count), pointers.baseAddress, lengths.baseAddress)
                    guard length >= 0, let target else {
                        fatalError("hiredis could not format a command (out of memory)")
                    }
                    defer { redisFreeSdsCommand(target) }
                    return ByteBuffer(bytes: UnsafeRawBufferPointer(start: target, count: Int(length)))
                }
            }
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
