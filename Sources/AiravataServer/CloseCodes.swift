package import AiravataCore
package import NIOWebSocket

/// The one place where refusals and failures become WebSocket close codes.
package enum CloseCodes {
    package static func code(for refusal: ConnectionRefusal) -> WebSocketErrorCode {
        switch refusal {
        case .authentication, .forbidden: .policyViolation  // 1008
        case .limit, .unavailable: .unknown(1013)  // Try Again Later
        }
    }

    package static let pingTimeout = WebSocketErrorCode.goingAway  // 1001
    package static let slowConsumer = WebSocketErrorCode.policyViolation
    package static let messageTooLarge = WebSocketErrorCode.messageTooLarge  // 1009
    /// A frame or close handshake that breaks RFC 6455.
    package static let protocolError = WebSocketErrorCode.protocolError  // 1002
    /// Text (a message or a close reason) that is not UTF-8.
    package static let invalidPayload = WebSocketErrorCode.dataInconsistentWithMessage  // 1007
    package static let rateLimitAbuse = WebSocketErrorCode.policyViolation
    package static let restart = WebSocketErrorCode.unknown(1012)  // Service Restart
}
