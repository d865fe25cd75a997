/// Why a WebSocket was not admitted. The server maps each case to the error text sent
/// to the client and to a close code.
package enum ConnectionRefusal: Error, Sendable, Equatable {
    case authentication(TokenError)
    case forbidden(String)
    case limit(ConnectionLimitExceeded)
    case unavailable(String)

    package var message: String {
        switch self {
        case .authentication(let error): error.clientMessage
        case .forbidden(let reason): reason
        case .limit(let exceeded): exceeded.message
        case .unavailable(let reason): reason
        }
    }
}
