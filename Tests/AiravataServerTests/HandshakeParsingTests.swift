import AiravataProtocol
import AiravataServer
import Foundation
import Testing

/// The pieces of the opening handshake written here instead of taken from Foundation or
/// NIO's header helpers: each against known answers or against the code it replaced.
@Suite("WebSocket handshake: digest, base64, key and header tokens")
struct HandshakeParsingTests {
    @Test("SHA-1 gives FIPS 180's answers, in one block and across two")
    func sha1() {
        let hex = { (text: String) in LowerHex.string(SHA1.digest(Array(text.utf8))) }
        #expect(hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(
            hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        // The generic form and the array form agree.
        #expect(SHA1.digest("abc".utf8) == SHA1.digest(Array("abc".utf8)))
    }

    @Test("base64 writes what Foundation writes, for every length up to 40")
    func base64() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            #expect(HandshakeTokens.base64(bytes) == Data(bytes).base64EncodedString(), "\(bytes)")
        }
    }

    @Test("a key is 16 bytes in base64: 22 characters of the alphabet and '=='")
    func keys() {
        #expect(HandshakeTokens.isValidKey("dGhlIHNhbXBsZSBub25jZQ=="))
        #expect(HandshakeTokens.isValidKey(" dGhlIHNhbXBsZSBub25jZQ==\t"))
        #expect(HandshakeTokens.isValidKey("+/+/+/+/+/+/+/+/+/+/+w=="))
        for bad in [
            "", "AAAAAA==", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ===", "dGhlIHNhbXBsZSBub25jZQAA",
            "dGhlIHNhbXBsZSBub25jZ%==", "dGhlIHNhbXBsZSB ub25jZQ==", "dGhlIHNhbXBsZSBub25j-Q==",
        ] {
            #expect(!HandshakeTokens.isValidKey(bad), "\(bad)")
        }
    }

    @Test("a header's comma-separated list is searched for a token in any case, blanks around items ignored")
    func tokens() {
        for listed in ["websocket", "WebSocket", "foo, websocket", " websocket ", "websocket,", "a,\tWEBSOCKET\t,b"] {
            #expect(HandshakeTokens.lists(listed, "websocket"), "\(listed)")
        }
        for unlisted in ["", ",", "websockets", "web socket", "foo", "websocket2, foo", "wébsocket"] {
            #expect(!HandshakeTokens.lists(unlisted, "websocket"), "\(unlisted)")
        }
    }
}
