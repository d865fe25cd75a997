import AiravataProtocol
import Foundation
import Testing

@testable import AiravataServer

@Suite("Percent-decoding of paths and queries")
struct PercentDecodingTests {
    @Test("malformed escapes and bytes that are not UTF-8 give nil; well-formed ones decode")
    func strictness() {
        for bad in ["%", "%4", "%4g", "%%", "100%", "%ff", "%c3%28", "%ED%A0%80", "a%C3"] {
            #expect(WebSocketRoute.percentDecoded(bad[...]) == nil, "\(bad)")
        }
        #expect(WebSocketRoute.percentDecoded("caf%C3%A9%20%2B+x") == "café ++x")
        #expect(WebSocketRoute.percentDecoded("a+b%2B", plusIsSpace: true) == "a b+")
    }

    @Test("a target splits at its first ? byte, whatever follows it")
    func splitAtTheQuestionMark() {
        let plain = WebSocketRoute.split("/ws/user?token=a?b")
        #expect(plain.path == "/ws/user" && plain.query == "token=a?b")
        #expect(WebSocketRoute.split("/ws/user").query == nil)
        #expect(WebSocketRoute.split("?").path == "" && WebSocketRoute.split("?").query == "")
        // A combining mark after the `?` makes one Character of the two; the split is still at the byte.
        let marked = WebSocketRoute.split("/ws/user?\u{301}token=x")
        #expect(Array(marked.path.utf8) == Array("/ws/user".utf8))
        #expect(Array((marked.query ?? "").utf8) == Array("\u{301}token=x".utf8))
    }

    @Test("a path's segments are cut at / bytes and compared as bytes")
    func segmentsAreBytes() {
        #expect(WebSocketRoute.endpoint("/ws") == .init(subscription: nil))
        #expect(
            WebSocketRoute.endpoint("//ws//user/") == .init(subscription: .init(resourceType: .user, resourceID: nil)))
        #expect(
            WebSocketRoute.endpoint("/ws/projects/p%2F1")
                == .init(subscription: .init(resourceType: .project, resourceID: "p/1")))
        for refused in ["", "/", "/wss", "/ws/users", "/ws/user/x", "/ws/projects/", "/ws/projects/a/b", "/api/ws"] {
            #expect(WebSocketRoute.endpoint(refused[...]) == nil, "\(refused)")
        }
        // A combining mark after a `/` makes one Character of the two; the cut is still at the byte.
        #expect(
            WebSocketRoute.endpoint("/ws/projects/\u{301}p")
                == .init(subscription: .init(resourceType: .project, resourceID: "\u{301}p")))
        #expect(WebSocketRoute.endpoint("/ws/\u{301}user") == nil)
        #expect(WebSocketRoute.endpoint("/ws\u{301}") == nil)
    }

    @Test("agrees with Foundation's removingPercentEncoding wherever that yields UTF-8, on random text")
    func agreesWithFoundation() {
        var inputs = [
            "", "plain", "a%20b", "%41%42", "%e2%82%ac", "%E2%82%AC", "%", "%4", "%4g", "%%", "100%",
            "%ff", "%c3%28", "%ED%A0%80", "a+b", "caf%C3%A9", "%00", "x%2Fy", "🚀%F0%9F%9A%80",
        ]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("%%%%+aF0919cdeg é".unicodeScalars)
        for _ in 0..<5_000 {
            let length = Int.random(in: 0...12, using: &generator)
            var text = ""
            for _ in 0..<length { text.unicodeScalars.append(alphabet.randomElement(using: &generator)!) }
            inputs.append(text)
        }
        // Where Foundation repairs bytes that are not UTF-8 (U+FFFD), ours gives nil.
        func foundation(_ text: String) -> String? {
            guard let decoded = text.removingPercentEncoding, !decoded.unicodeScalars.contains("\u{FFFD}") else {
                return nil
            }
            return decoded
        }
        var decoded = 0
        for input in inputs {
            let ours = WebSocketRoute.percentDecoded(input[...])
            #expect(ours == foundation(input), "\(input.debugDescription)")
            #expect(
                WebSocketRoute.percentDecoded(input[...], plusIsSpace: true)
                    == foundation(input.replacingOccurrences(of: "+", with: " ")),
                "\(input.debugDescription) in a query")
            if ours != nil { decoded += 1 }
        }
        #expect(decoded > 500, "too few decodable samples to say anything: \(decoded)")
    }
}
