import AiravataCore
import AiravataProtocol
import Testing

@Suite("Session ids")
struct SessionIDTests {
    @Test("lower-case hex has two digits per byte, in order")
    func lowerHex() {
        #expect(LowerHex.string([0x00, 0x0F, 0xA5, 0xFF, 0x10]) == "000fa5ff10")
        #expect(LowerHex.string([UInt8]()) == "")
        #expect(LowerHex.string(0...255).count == 512)
    }

    @Test("a session id is 32 lower-case hex digits, every digit random, none repeated")
    func sessionIDs() {
        let ids = (0..<2000).map { _ in Gateway.newSessionID() }
        #expect(Set(ids).count == ids.count)
        let hexDigits = Set("0123456789abcdef".utf8)
        for id in ids {
            #expect(id.utf8.count == 32 && id.utf8.allSatisfy(hexDigits.contains), "\(id)")
            #expect(Gateway.isWellFormedSessionID(id))
        }
        // A part of the id left unfilled (zero, or the same in every id) shows as a position
        // with few distinct digits; a random one shows all sixteen in 2,000 ids.
        for position in 0..<32 {
            let digits = Set(ids.map { Array($0.utf8)[position] })
            #expect(digits.count == 16, "position \(position) took only \(digits.count) digits")
        }
    }
}
