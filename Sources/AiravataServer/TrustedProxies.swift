import Foundation
package import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Which peers may tell us the client's address through `X-Forwarded-For`.
package struct TrustedProxies: Sendable, Equatable {
    private struct Network: Sendable, Equatable {
        var address: [UInt8]
        var prefixLength: Int

        func contains(_ candidate: [UInt8]) -> Bool {
            guard candidate.count == address.count else { return false }
            var remaining = prefixLength
            for (lhs, rhs) in zip(address, candidate) {
                if remaining <= 0 { return true }
                let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
                if lhs & mask != rhs & mask { return false }
                remaining -= 8
            }
            return true
        }
    }

    private var networks: [Network] = []

    package init() {}

    /// `list` holds comma-separated addresses or CIDR blocks: `10.0.0.0/8, ::1`.
    package init(_ list: String, source: String = "--trusted-proxies") throws(ConfigurationError) {
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "/", maxSplits: 1).map(String.init)
            guard let address = Self.parse(parts[0]) else {
                throw ConfigurationError("\(source): '\(item)' is not an IP address or CIDR block")
            }
            let maxPrefix = address.count * 8
            let prefix = parts.count > 1 ? Int(parts[1]) : maxPrefix
            guard let prefix, (0...maxPrefix).contains(prefix) else {
                throw ConfigurationError("\(source): '\(item)' has a bad prefix length")
            }
            networks.append(Network(address: address, prefixLength: prefix))
        }
    }

    package var isEmpty: Bool { networks.isEmpty }

    package func trusts(_ ip: String) -> Bool {
        guard let bytes = Self.parse(ip) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// The client's address: the peer's own, or, behind trusted proxies, the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy. An entry that is no IP
    /// address (the header is the client's to write, left of what our proxies append) ends
    /// the walk at the peer: it would otherwise become a limit key and a Redis key name.
    package func clientIP(peer: String, headers: HTTPHeaders) -> String {
        guard trusts(peer) else { return peer }
        let forwarded = headers[canonicalForm: "x-forwarded-for"].map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in forwarded.reversed() where !hop.isEmpty {
            let address = String(hop)
            guard Self.parse(address) != nil else { return peer }
            if !trusts(address) { return address }
        }
        return peer
    }

    private static func parse(_ text: String) -> [UInt8]? {
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
        return nil
    }
}

/// A setting that cannot work, reported at start-up.
package struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    package let description: String

    package init(_ description: String) {
        self.description = description
    }
}
