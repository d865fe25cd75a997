/// Something went wrong talking to Redis. `code` says what, so callers can branch on it
/// without parsing messages.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case connectionClosed
            case notConnected
            case protocolViolation
            case server
            case invalidURL
            case timeout
            case unexpectedReply
        }

        private let value: Value

        public static let connectionClosed = Code(value: .connectionClosed)
        public static let notConnected = Code(value: .notConnected)
        public static let protocolViolation = Code(value: .protocolViolation)
        /// Redis answered with an error reply.
        public static let server = Code(value: .server)
        public static let invalidURL = Code(value: .invalidURL)
        public static let timeout = Code(value: .timeout)
        public static let unexpectedReply = Code(value: .unexpectedReply)

        public var description: String { value.rawValue }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "Redis \(code): \(message)" }

    /// Redis does not know the script digest of an `EVALSHA`.
    public var isNoScript: Bool { code == .server && message.hasPrefix("NOSCRIPT") }
}
