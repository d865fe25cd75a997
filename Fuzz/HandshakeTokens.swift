import AiravataServerHandshakeTokens
import Foundation

/// What a WebSocket opening handshake reads from the client's header values.
///
/// Invariants: a header value lists `websocket` exactly when, split at commas and trimmed of
/// spaces and tabs, one item is `websocket` in ASCII letters of any case (and then also when
/// lowercased as Unicode, split at comma scalars: never more lenient than that); a key
/// is valid exactly when Foundation decodes it, trimmed, from 24 characters to 16 bytes or it
/// differs from such a key only in the unused low bits of its last character; base64 writes
/// what Foundation writes, and Foundation reads it back.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzHandshakeTokens(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let value = String(decoding: bytes, as: UTF8.self)

    let items = Array(value.utf8).split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map {
        item in
        item.drop { $0 == 0x20 || $0 == 0x09 }.reversed().drop { $0 == 0x20 || $0 == 0x09 }.reversed()
    }
    let asASCII = items.contains { item in
        item.count == 9 && zip(item, "websocket".utf8).allSatisfy { ($0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0) == $1 }
    }
    let listed = HandshakeTokens.lists(value, "websocket")
    invariant(listed == asASCII, "lists says \(listed) for \(text(bytes))")
    if listed {
        // Split at the comma as a scalar: split as Characters, a comma followed by a combining
        // mark is one character and no separator, where llhttp and every proxy see one.
        let unicode = value.unicodeScalars.split(separator: ",", omittingEmptySubsequences: false).contains {
            String(String.UnicodeScalarView($0)).trimmingCharacters(in: CharacterSet(charactersIn: " \t")).lowercased()
                == "websocket"
        }
        invariant(unicode, "listed, but not as the lowercased check read it: \(text(bytes))")
    }

    let trimmed = HandshakeTokens.trimmed(value)
    let decoded = trimmed.utf8.count == 24 ? Data(base64Encoded: trimmed) : nil
    let valid = HandshakeTokens.isValidKey(value)
    if decoded?.count == 16 {
        invariant(valid, "Foundation reads a 16-byte key the check refuses: \(text(bytes))")
    } else if valid {
        // Only the last character's two unused bits may make Foundation refuse it.
        var canonical = Array(trimmed.utf8)
        canonical[21] = UInt8(ascii: "A")
        invariant(
            Data(base64Encoded: String(decoding: canonical, as: UTF8.self))?.count == 16,
            "a key the check takes and Foundation refuses: \(text(bytes))")
    }

    let encoded = HandshakeTokens.base64(bytes)
    invariant(encoded == Data(bytes).base64EncodedString(), "base64 of \(size) bytes differs from Foundation's")
    invariant(Data(base64Encoded: encoded) == Data(bytes), "Foundation does not read our base64 back")
    return 0
}
