/// Why a connection or a request could not be authenticated.
package enum TokenError: Error, Sendable, Equatable {
    case missing
    case invalid(reason: String)

    /// The text the protocol prescribes for the client.
    package var clientMessage: String {
        switch self {
        case .missing: "Authentication required"
        case .invalid: "Invalid or expired token"
        }
    }
}

/// A key configuration that cannot work; reported at start-up.
package struct TokenConfigurationError: Error, Sendable, CustomStringConvertible {
    package let description: String

    package init(_ description: String) {
        self.description = description
    }
}
