public import NIOCore

/// A RESP2 reply, converted from hiredis's C objects as soon as it is read.
public enum RedisReply: Sendable, Equatable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk(ByteBuffer)
    case null
    case array([RedisReply])

    public var string: String? {
        switch self {
        case .status(let text): text
        case .bulk(let buffer): String(buffer: buffer)
        case .integer(let value): String(value)
        default: nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let buffer): Int64(String(buffer: buffer))
        default: nil
        }
    }

    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
