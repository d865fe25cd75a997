/// What the ids a client or producer names may look like (docs/protocol.md, "Identifiers").
///
/// Ids become Redis keys, session records, log fields and routing keys on every node, so
/// each has a length bound; resource ids are also kept to characters that need no escaping
/// in a path, a key or a log line. User ids come from the identity provider and may be any
/// Unicode; they compare as bytes (`ExactString`).
package enum Identifier {
    /// The longest experiment, task, project or worker id, in bytes.
    package static let maximumResourceIDBytes = 128
    /// The longest user id (`sub`, `user_id`, `ownerId`, `userId`), in UTF-8 bytes.
    package static let maximumUserIDBytes = 256

    /// The longest event id a producer may supply, in bytes; ids become part of every
    /// frame and, for deduplication and replay, of what the cluster stores.
    package static let maximumEventIDBytes = 256

    /// How a client or producer is told what a resource id may be.
    package static let resourceIDRule =
        "must be 1 to \(maximumResourceIDBytes) characters from A-Z a-z 0-9 . _ : @ ~ + = -"
    /// How a client or producer is told what a user id may be.
    package static let userIDRule =
        "must be 1 to \(maximumUserIDBytes) UTF-8 bytes without control characters"

    /// How a producer is told what an event id may be.
    package static let eventIDRule =
        "must be 1 to \(maximumEventIDBytes) characters from A-Z a-z 0-9 . _ : @ ~ + = -"

    /// A producer-supplied event id: the resource-id characters, a longer bound.
    package static func isValidEventID(_ id: String) -> Bool {
        let utf8 = id.utf8
        return !utf8.isEmpty && utf8.count <= maximumEventIDBytes && utf8.allSatisfy(isResourceIDByte)
    }

    /// Experiment, task, project and worker ids: printable ASCII from a small set.
    package static func isValidResourceID(_ id: String) -> Bool {
        let utf8 = id.utf8
        return !utf8.isEmpty && utf8.count <= maximumResourceIDBytes && utf8.allSatisfy(isResourceIDByte)
    }

    /// User ids: any Unicode but control characters (C0, DEL, C1), bounded in bytes.
    package static func isValidUserID(_ id: String) -> Bool {
        let count = id.utf8.count
        return count > 0 && count <= maximumUserIDBytes
            && !id.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
    }

    /// One byte of a resource or event id.
    package static func isResourceIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "~"),
            UInt8(ascii: "+"), UInt8(ascii: "="), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}

extension ClientMessage.SubscriptionRequest {
    /// Why the request's `resourceId` cannot be used, or nil when it can (or is absent).
    package var resourceIDProblem: String? {
        guard let id = resourceID else { return nil }
        switch resourceType {
        case .user:
            return Identifier.isValidUserID(id) ? nil : "resourceId \(Identifier.userIDRule)"
        case .experiment, .task, .project, .worker, .system:
            return Identifier.isValidResourceID(id) ? nil : "resourceId \(Identifier.resourceIDRule)"
        }
    }
}
