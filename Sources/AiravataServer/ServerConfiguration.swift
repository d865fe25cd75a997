package import NIOSSL

/// Settings of the HTTP/WebSocket front of a node.
package struct ServerConfiguration: Sendable {
    package var host: String
    /// 0 picks a free port (tests).
    package var port: Int
    /// Largest inbound WebSocket message in bytes; larger ones close the connection with 1009.
    package var maxFrameSize: Int
    /// Inbound messages per second per connection; 0 turns the limit off.
    package var rateLimit: Double
    package var pingIntervalSeconds: Double
    /// Largest ingestion body in bytes; larger ones are answered 413.
    package var maxBodySize: Int
    /// Bytes queued for one client before it counts as a slow consumer and is closed.
    package var maxOutboundBytes: Int
    /// How long the server waits for a client's close reply.
    package var closeTimeoutSeconds: Double
    /// Peers whose `X-Forwarded-For` names the real client (for per-IP limits).
    package var trustedProxies: TrustedProxies
    /// After SIGTERM: how long to keep serving with readiness off before closing clients.
    package var drainDelaySeconds: Double
    /// Set to serve `wss://` and `https://` directly, without a TLS-terminating proxy.
    package var tls: NIOSSLContext?
    /// After the drain delay, closes are spread over this window (capped at half the timeout).
    package var drainSpreadSeconds: Double = 2
    /// After SIGTERM: the longest wait for clients to leave before exiting.
    package var drainTimeoutSeconds: Double
    /// A plain HTTP request (or a WebSocket handshake), from its first byte to its last, must
    /// arrive within this; slower ones get 408 and the close (slowloris). 0 turns it off.
    package var requestTimeoutSeconds: Double = 10
    /// A kept-alive HTTP connection with no request in flight is closed after this.
    package var idleTimeoutSeconds: Double = 60
    /// Request parts (heads, body chunks, ends) a connection may have waiting behind a request
    /// still being answered (HTTP/1.1 pipelining); past it the connection is closed. Not a flag:
    /// tests lower it to reach it.
    package var maxHeldRequestParts = 8192
    /// How long a connection's last answer may take to leave (a client that does not read
    /// holds it) before the connection is closed anyway, and how long a closing connection
    /// is then read and dropped (`HTTPRequestHandler.linger`). Not flags: tests raise the
    /// first so that a client's late reading is no race.
    package var finalAnswerGraceSeconds: Double = 2
    /// Producers' plainest event POSTs are read from the connection's bytes, before NIO's
    /// HTTP decoder (`IngestFastPath`). Not a flag: tests turn it off to compare the paths.
    package var fastIngest = true
    package var lingerSeconds: Double = 2
    /// Connections that have not yet upgraded and authenticated, or sent an authenticated
    /// request: in total and per client address.
    package var pendingConnections = PendingConnectionGate.Limits()
    /// TCP_NODELAY on client sockets (`TCPNoDelay`): by default on until a connection is
    /// streamed to, then off until it is quiet again.
    package var tcpNoDelay = TCPNoDelay.auto
    /// When `tcpNoDelay` is `.auto` calls a connection streamed to. Not flags: tests shorten
    /// them.
    package var streamThresholds = StreamDetector.Thresholds()
    /// WebSocket frames written to the socket directly, past NIO's write path, while NIO holds
    /// none of the connection's bytes (`SocketWriter`). Off: every write goes through NIO.
    package var directWrites = true

    package init(
        host: String = "0.0.0.0",
        port: Int = 8080,
        maxFrameSize: Int = 65_536,
        rateLimit: Double = 20,
        pingIntervalSeconds: Double = 30,
        maxBodySize: Int = 1 << 20,
        maxOutboundBytes: Int = 4 << 20,
        closeTimeoutSeconds: Double = 5,
        trustedProxies: TrustedProxies = TrustedProxies(),
        drainDelaySeconds: Double = 5,
        drainTimeoutSeconds: Double = 30
    ) {
        self.trustedProxies = trustedProxies
        self.drainDelaySeconds = drainDelaySeconds
        self.drainTimeoutSeconds = drainTimeoutSeconds
        self.host = host
        self.port = port
        self.maxFrameSize = maxFrameSize
        self.rateLimit = rateLimit
        self.pingIntervalSeconds = pingIntervalSeconds
        self.maxBodySize = maxBodySize
        self.maxOutboundBytes = maxOutboundBytes
        self.closeTimeoutSeconds = closeTimeoutSeconds
    }
}

/// How client sockets use `TCP_NODELAY`. With it each write is a TCP segment the moment it is
/// written. Without it (Nagle's algorithm, which Nchan's WebSockets run with) the kernel
/// holds a small write while an earlier one is unacknowledged and sends what it holds
/// together when the acknowledgement comes: far fewer segments, so far less CPU, in fan-out,
/// at up to a delayed ACK's wait for a frame that follows another closely.
package enum TCPNoDelay: Sendable, Equatable {
    /// Always on.
    case on
    /// Always off.
    case off
    /// On, and off while a connection is streamed to (`StreamDetector`). Needs direct socket
    /// writes (`directWrites`, not with TLS); without them it is `.on`.
    case auto
}
