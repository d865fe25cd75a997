import AiravataProtocol
import Testing

@Suite("Identifier rules")
struct IdentifierTests {
    @Test("the protocol's example ids are resource ids")
    func specExamples() {
        for id in ["exp-123", "task-456", "worker-789", "proj-789", "compute-123", "p-1", "a.b_c:d@e~f+g=h"] {
            #expect(Identifier.isValidResourceID(id), "expected \(id) to be accepted")
        }
        #expect(Identifier.isValidResourceID(String(repeating: "x", count: Identifier.maximumResourceIDBytes)))
    }

    @Test(
        "resource ids: too long, empty, or outside the character set are refused",
        arguments: [
            "", String(repeating: "x", count: 129), "exp 1", "exp/1", "exp?1", "caf\u{E9}", "\u{212A}", "a\u{0}",
            "a\"b", "a%2Fb",
        ]
    )
    func badResourceIDs(id: String) {
        #expect(!Identifier.isValidResourceID(id), "expected \(id.debugDescription) to be refused")
    }

    @Test("user ids: any Unicode up to 256 bytes, no control characters")
    func userIDs() {
        for id in ["alice", "user-456", "caf\u{E9}", "cafe\u{301}", "Zoë O'Neil", String(repeating: "é", count: 128)] {
            #expect(Identifier.isValidUserID(id), "expected \(id.debugDescription) to be accepted")
        }
        for id in [
            "", String(repeating: "x", count: 257), String(repeating: "é", count: 129), "a\nb", "a\u{0}", "a\u{7F}",
            "a\u{85}",
        ] {
            #expect(!Identifier.isValidUserID(id), "expected \(id.debugDescription) to be refused")
        }
    }

    @Test("ExactString compares and hashes by bytes")
    func exactString() {
        #expect(ExactString("caf\u{E9}") != ExactString("cafe\u{301}"))
        #expect("caf\u{E9}" == "cafe\u{301}", "Swift's String equality is canonical; the reason for ExactString")
        #expect(Set([ExactString("caf\u{E9}"), ExactString("cafe\u{301}"), ExactString("caf\u{E9}")]).count == 2)
        #expect(ExactString("\u{212A}") != ExactString("K"))
        #expect("x".hasSameBytes(as: "x"))
    }
}
