import Testing

@testable import AiravataProtocol

@Suite("UTF-8 validation")
struct UTF8ValidationTests {
    @Test("agrees with the standard library's decoder on edge cases and on random bytes")
    func agreesWithStandardLibrary() {
        let cases: [[UInt8]] = [
            [], Array("plain ascii, longer than eight bytes".utf8), Array("café 🚀 ∑".utf8),
            [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0xA0, 0x80], [0xED, 0xA0, 0x80], [0xED, 0x9F, 0xBF],
            [0xF0, 0x8F, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80],
            [0xF5, 0x80, 0x80, 0x80], [0xFF], [0x80], [0xC3], [0xE2, 0x82], Array("12345678".utf8) + [0xC3, 0x28],
        ]
        for bytes in cases {
            #expect(UTF8Validation.isValid(bytes) == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
        // Bytes drawn mostly from ASCII and lead/continuation ranges, so both answers are common.
        var generator = SystemRandomNumberGenerator()
        let pool: [ClosedRange<UInt8>] = [0x20...0x7E, 0x80...0xBF, 0xC2...0xF4, 0x00...0xFF]
        var valid = 0
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...24, using: &generator)
            let bytes = (0..<length).map { _ in
                UInt8.random(in: pool.randomElement(using: &generator)!, using: &generator)
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            if expected { valid += 1 }
            #expect(UTF8Validation.isValid(bytes) == expected, "\(bytes)")
        }
        #expect(valid > 100, "too few valid samples to say anything: \(valid)")
    }
}
