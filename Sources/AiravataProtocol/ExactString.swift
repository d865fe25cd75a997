/// A string that equals another only when their UTF-8 bytes are equal.
///
/// `String` compares and hashes by Unicode canonical equivalence: `"café"` spelled with
/// U+00E9 equals the one spelled `e` + U+0301, and `"\u{212A}"` (Kelvin) equals `"K"`.
/// Identities must not: RFC 7519 compares claims without canonicalization, so two
/// spellings are two users. Every user id, project id, resource id and JSON member name is
/// compared through this type or `String.hasSameBytes(as:)`, and hashed through this type.
package struct ExactString: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    package let value: String

    package init(_ value: String) {
        self.value = value
    }

    package init(stringLiteral value: String) {
        self.value = value
    }

    package var description: String { value }

    package static func == (lhs: ExactString, rhs: ExactString) -> Bool {
        lhs.value.hasSameBytes(as: rhs.value)
    }

    package func hash(into hasher: inout Hasher) {
        let utf8 = value.utf8
        hasher.combine(utf8.count)
        let contiguous: Void? = utf8.withContiguousStorageIfAvailable {
            hasher.combine(bytes: UnsafeRawBufferPointer($0))
        }
        if contiguous == nil {
            for byte in utf8 { hasher.combine(byte) }
        }
    }
}

extension String {
    /// Byte equality, for identities; see `ExactString`.
    package func hasSameBytes(as other: String) -> Bool {
        utf8.count == other.utf8.count && utf8.elementsEqual(other.utf8)
    }
}
