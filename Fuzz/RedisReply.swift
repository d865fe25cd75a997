import AiravataRedisReply
import NIOCore

/// Redis replies as hiredis reads them and `RedisReplyParser` converts them; a node must
/// survive whatever a Redis server (or anything pretending to be one) sends.
///
/// Invariants: feeding the bytes in two pieces yields the same replies and the same
/// outcome as feeding them at once; every reply written back as RESP reads as itself;
/// an array of bulk strings written by `RedisCommand` (our command encoder) reads back too.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzRedisReply(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    let whole = read([input[...]])
    let split = size > 1 ? Int(input[0]) % size : 0
    let pieces = read([input[..<split], input[split...]])
    invariant(pieces == whole, "split at \(split): \(pieces) but at once \(whole) for \(text(input))")

    for reply in whole.replies {
        let written = resp(reply)
        let reread = read([written.withUnsafeBufferPointer { $0[...] }])
        invariant(reread == Outcome(replies: [reply], failed: false), "\(reply) wrote \(text(written)), read \(reread)")
        if case .array(let elements) = reply, let arguments = bulkStrings(elements), !arguments.isEmpty {
            let command = RedisCommand(
                String(buffer: arguments[0]),
                arguments.dropFirst().map { RedisArgument($0) }
            )
            var encoded = command.encoded()
            let bytes = encoded.readBytes(length: encoded.readableBytes) ?? []
            let fromCommand = read([bytes.withUnsafeBufferPointer { $0[...] }])
            if Array(arguments[0].readableBytesView) == Array(String(buffer: arguments[0]).utf8) {
                invariant(fromCommand.replies == [reply], "RedisCommand wrote \(text(bytes)), read \(fromCommand)")
            }
        }
    }
    return 0
}

private struct Outcome: Equatable, CustomStringConvertible {
    var replies: [RedisReply]
    var failed: Bool

    var description: String { "\(replies)\(failed ? " then a protocol error" : "")" }
}

/// Every reply the pieces hold, fed one after another, and whether the reader refused them.
private func read(_ pieces: [Slice<UnsafeBufferPointer<UInt8>>]) -> Outcome {
    let parser = RedisReplyParser()
    var outcome = Outcome(replies: [], failed: false)
    do throws(RedisError) {
        for piece in pieces {
            try parser.feed(ByteBuffer(bytes: piece))
            while let reply = try parser.next() {
                outcome.replies.append(reply)
            }
        }
    } catch {
        invariant(error.code == .protocolViolation && !error.message.isEmpty, "unexpected \(error)")
        outcome.failed = true
    }
    return outcome
}

/// RESP2 as a server writes it.
private func resp(_ reply: RedisReply) -> [UInt8] {
    switch reply {
    case .status(let text): Array("+\(text)\r\n".utf8)
    case .error(let text): Array("-\(text)\r\n".utf8)
    case .integer(let value): Array(":\(value)\r\n".utf8)
    case .null: Array("$-1\r\n".utf8)
    case .bulk(let buffer): Array("$\(buffer.readableBytes)\r\n".utf8) + Array(buffer.readableBytesView) + [13, 10]
    case .array(let elements): Array("*\(elements.count)\r\n".utf8) + elements.flatMap(resp)
    }
}

private func bulkStrings(_ elements: [RedisReply]) -> [ByteBuffer]? {
    var buffers: [ByteBuffer] = []
    for element in elements {
        guard case .bulk(let buffer) = element else { return nil }
        buffers.append(buffer)
    }
    return buffers
}
