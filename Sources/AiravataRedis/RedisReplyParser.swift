import CHiredis
public import NIOCore

/// Incremental RESP parsing by hiredis's `redisReader`. This file is the only one that
/// touches hiredis pointers: every reply becomes a `RedisReply` and is freed right here.
public final class RedisReplyParser {
    private let reader: UnsafeMutablePointer<redisReader>

    /// The most elements one array reply may announce; more is a protocol error. hiredis
    /// allocates an array's elements when it reads the header, so without a bound 14 bytes
    /// from a hostile or corrupted Redis could ask for 16 GiB.
    public static let maxArrayElements = Int(CHIREDIS_MAX_ARRAY_ELEMENTS)

    public init() {
        // Creating a reader only fails when malloc does.
        guard let reader = CHiredis_readerCreateBounded() else { fatalError("hiredis could not allocate a reader") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes to the reader; replies may span several feeds.
    public func feed(_ buffer: ByteBuffer) throws(RedisError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else { throw RedisError(.protocolViolation, readerError()) }
    }

    /// The next complete reply, or nil until more bytes arrive.
    public func next() throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw RedisError(.protocolViolation, readerError())
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// The bytes the reader's buffer has room for; it keeps up to
    /// `keptBufferLimit` once every reply in it has been read.
    public var bufferCapacity: Int { Int(CHiredis_readerBufferCapacity(reader)) }

    /// The most unused buffer a reader keeps between reads (larger ones are freed once empty).
    public static let keptBufferLimit = Int(CHIREDIS_READER_KEPT_BUFFER)

    private func readerError() -> String {
        guard let text = CHiredis_readerError(reader) else { return "unknown protocol error" }
        return String(cString: text)
    }

    private static func convert(_ reply: UnsafePointer<redisReply>) -> RedisReply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS:
            return .status(string(value))
        case REDIS_REPLY_ERROR:
            return .error(string(value))
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_STRING:
            guard let bytes = value.str, value.len > 0 else { return .bulk(ByteBuffer()) }
            return .bulk(ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: value.len)))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                guard let element = CHiredis_replyElement(reply, index) else {
                    elements.append(.null)
                    continue
                }
                elements.append(convert(element))
            }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func string(_ reply: redisReply) -> String {
        guard let bytes = reply.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: reply.len), as: UTF8.self)
    }
}
