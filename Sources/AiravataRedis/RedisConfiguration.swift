import Foundation

/// Where Redis is and how to log in, from a URL:
/// `redis://[[user]:password@]host[:port][/db]`, `rediss://…` for TLS, or
/// `unix:///path/to/redis.sock[?db=N&password=P]`.
public struct RedisConfiguration: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
        /// Ask these Sentinels (`host:port`) where the named master is, on every connect, so
        /// that a reconnect after a failover reaches the new master.
        case sentinel(addresses: [String], master: String)
    }

    public var endpoint: Endpoint
    public var username: String?
    public var password: String?
    public var database: Int
    public var tls: Bool
    /// PEM file of the certificate authorities a `rediss://` server's certificate must chain
    /// to; nil trusts the system's roots. A Redis inside a cluster usually has a private CA.
    public var tlsCAFile: String?

    public init(
        endpoint: Endpoint, username: String? = nil, password: String? = nil, database: Int = 0, tls: Bool = false,
        tlsCAFile: String? = nil
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.tlsCAFile = tlsCAFile
    }

    public init(url text: String) throws(RedisError) {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased() else {
            throw RedisError(.invalidURL, "'\(text)' is not a URL; expected redis://host:port/db")
        }
        let query = Dictionary((url.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        switch scheme {
        case "redis", "rediss":
            guard let host = url.host, !host.isEmpty else { throw RedisError(.invalidURL, "no host in '\(text)'") }
            let port = url.port ?? 6379
            guard (1...65535).contains(port) else { throw RedisError(.invalidURL, "bad port in '\(text)'") }
            let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            var database = 0
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else {
                    throw RedisError(.invalidURL, "the path of '\(text)' must be a database number")
                }
                database = number
            }
            self.init(
                endpoint: .tcp(host: host, port: port),
                username: url.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding },
                password: url.password?.removingPercentEncoding,
                database: database,
                tls: scheme == "rediss"
            )
        case "unix", "redis+unix":
            guard !url.path.isEmpty else { throw RedisError(.invalidURL, "no socket path in '\(text)'") }
            let database = Int(query["db"] ?? "0") ?? -1
            guard database >= 0 else { throw RedisError(.invalidURL, "bad db in '\(text)'") }
            self.init(endpoint: .unixSocket(path: url.path), password: query["password"], database: database)
        default:
            throw RedisError(
                .invalidURL, "unsupported scheme '\(scheme)' in '\(text)'; use redis://, rediss:// or unix://")
        }
    }

    /// Sentinel mode: `addresses` is a comma-separated `host:port` list.
    public init(
        sentinels addresses: String, master: String, password: String? = nil, database: Int = 0
    ) throws(RedisError) {
        let list = addresses.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard !list.isEmpty else { throw RedisError(.invalidURL, "no Sentinel addresses in '\(addresses)'") }
        for address in list {
            guard Self.hostAndPort(address) != nil else {
                throw RedisError(.invalidURL, "'\(address)' is not host:port")
            }
        }
        guard !master.isEmpty else { throw RedisError(.invalidURL, "the Sentinel master name is empty") }
        self.init(endpoint: .sentinel(addresses: list, master: master), password: password, database: database)
    }

    static func hostAndPort(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        let host = String(address[..<colon])
        return host.isEmpty ? nil : (host, port)
    }

    /// For logs: the URL without the password.
    public var redacted: String {
        switch endpoint {
        case .tcp(let host, let port): "\(tls ? "rediss" : "redis")://\(host):\(port)/\(database)"
        case .unixSocket(let path): "unix://\(path)?db=\(database)"
        case .sentinel(let addresses, let master): "sentinel://\(addresses.joined(separator: ","))/\(master)"
        }
    }
}
