/// SHA-1 (FIPS 180-4). Not for security: Redis names its scripts by it, and RFC 6455 derives
/// the `Sec-WebSocket-Accept` answer from the client's key with it.
package enum SHA1 {
    /// The 20-byte digest of `message`.
    package static func digest(_ message: some Collection<UInt8>) -> [UInt8] {
        digest(Array(message))
    }

    /// The same for an array: the rounds below run specialised here, where a caller in
    /// another module would run the generic form unspecialised (a WebSocket handshake's accept
    /// value took ~3 % of a node's CPU per connect so).
    package static func digest(_ message: [UInt8]) -> [UInt8] {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (
            0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0
        )
        var padded = message
        let bits = UInt64(padded.count) &* 8
        padded.reserveCapacity(padded.count + 72)
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) {
            padded.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
        }
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for chunk in stride(from: 0, to: padded.count, by: 64) {
                for i in 0..<16 {
                    let at = chunk + 4 * i
                    w[i] =
                        UInt32(padded[at]) << 24 | UInt32(padded[at + 1]) << 16 | UInt32(padded[at + 2]) << 8
                        | UInt32(padded[at + 3])
                }
                for i in 16..<80 {
                    let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                    w[i] = x << 1 | x >> 31
                }
                var (a, b, c, d, e) = h
                for i in 0..<80 {
                    let (f, k): (UInt32, UInt32) =
                        switch i {
                        case 0..<20: ((b & c) | (~b & d), 0x5A82_7999)
                        case 20..<40: (b ^ c ^ d, 0x6ED9_EBA1)
                        case 40..<60: ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                        default: (b ^ c ^ d, 0xCA62_C1D6)
                        }
                    let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
                    (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, temp)
                }
                h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(20)
        for word in [h.0, h.1, h.2, h.3, h.4] {
            for shift in stride(from: 24, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: word >> UInt32(shift)))
            }
        }
        return out
    }

    /// The digest in lower-case hexadecimal, as Redis prints it.
    package static func hex(_ message: some Collection<UInt8>) -> String {
        LowerHex.string(digest(message))
    }
}
