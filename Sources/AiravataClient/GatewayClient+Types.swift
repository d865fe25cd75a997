public import AiravataProtocol
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOWebSocket
import Synchronization

extension GatewayClient {
    public struct Configuration: Sendable {
        /// Where to connect; with several, each attempt takes the next (behind a load
        /// balancer there is one).
        public var endpoints: [(host: String, port: Int)]
        /// `/ws`, or a path subscription such as `/ws/experiments/exp-1`.
        public var path: String
        /// Called before every connection attempt, so a refreshed token is picked up.
        public var token: @Sendable () async throws -> String
        /// Resume the session after a reconnect (the default). Off, the client starts a new
        /// session each time and re-subscribes; events sent while it was away are missed.
        public var resume: Bool = true
        public var initialBackoff: Duration = .milliseconds(500)
        public var maximumBackoff: Duration = .seconds(30)
        /// After a server restart (close 1012) the first attempt waits at most this long;
        /// the server already spreads its closes, this only breaks up ties.
        public var restartJitter: Duration = .milliseconds(250)
        /// nil: retry forever.
        public var maximumAttempts: Int?
        /// A connection on which nothing arrives this long (the server pings every 30 s by
        /// default) is presumed dead (a half-open socket after a partition) and replaced.
        /// It also bounds the wait for the upgrade answer. nil: never.
        public var idleTimeout: Duration? = .seconds(75)
        public var group: any EventLoopGroup

        public init(
            host: String,
            port: Int,
            path: String = "/ws",
            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
            token: @escaping @Sendable () async throws -> String
        ) {
            self.endpoints = [(host, port)]
            self.path = path
            self.group = group
            self.token = token
        }

        /// From `ws://host:port/path`.
        public init(
            url: String,
            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
            token: @escaping @Sendable () async throws -> String
        ) throws {
            guard url.hasPrefix("ws://") else { throw GatewayClientError("only ws:// URLs are supported: \(url)") }
            let rest = url.dropFirst("ws://".count)
            let authority = rest.prefix { $0 != "/" }
            let path = rest.dropFirst(authority.count)
            let parts = authority.split(separator: ":", maxSplits: 1)
            guard let host = parts.first.map(String.init), !host.isEmpty else {
                throw GatewayClientError("no host in \(url)")
            }
            let port = parts.count > 1 ? Int(parts[1]) : 80
            guard let port, (1...65535).contains(port) else { throw GatewayClientError("bad port in \(url)") }
            self.init(host: host, port: port, path: path.isEmpty ? "/ws" : String(path), group: group, token: token)
        }
    }

    /// What the client reports.
    public enum Event: Sendable {
        /// A connection was admitted. `resumed`: the session (subscriptions and the events
        /// missed meanwhile) came back.
        case connected(sessionID: String, nodeID: String, resumed: Bool)
        /// An event or any other server message for the application.
        case message(Envelope)
        /// The events missed while away were all replayed.
        case replayComplete(replayed: Int)
        /// Some events missed while away cannot be replayed (`reason` says why): refetch the
        /// state over REST. Live events continue.
        case recoveryFailed(reason: String)
        /// The connection ended; the next attempt starts after `retryIn` (nil: giving up).
        case disconnected(code: UInt16?, reason: String, retryIn: Duration?)
    }

    /// A subscription the client keeps; `resourceID` nil for `system` and the own `user`.
    public struct Subscription: Sendable, Hashable {
        public var resourceType: ResourceType
        public var resourceID: String?

        public init(_ resourceType: ResourceType, _ resourceID: String?) {
            self.resourceType = resourceType
            self.resourceID = resourceID
        }

        var request: JSONValue { message("subscribe") }
        var cancellation: JSONValue { message("unsubscribe") }

        private func message(_ action: String) -> JSONValue {
            var data: JSONObject = ["action": .string(action), "resourceType": .string(resourceType.rawValue)]
            if let resourceID { data["resourceId"] = .string(resourceID) }
            return .object(["type": .string("system_status"), "data": .object(data)])
        }
    }
}
