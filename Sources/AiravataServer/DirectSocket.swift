import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A WebSocket's own socket, written with one `send` (or `sendmsg`) past NIO's write path (its pipeline
/// traversal, pending-writes queue and flush bookkeeping cost about a fifth of a delivering
/// node's CPU in fan-out). Used only while NIO holds none of the connection's bytes; see
/// `WebSocketConnectionHandler` for how the two take turns without reordering.
///
/// NIO does not publish a channel's descriptor, so `of(_:)` reads it from the channel's
/// stored properties and then proves it: the descriptor's local and peer addresses must be
/// the channel's own, or it is not used (a different NIO layout, or no descriptor found,
/// leaves the connection on NIO's path).
enum DirectSocket {
    /// What one send did.
    enum Outcome {
        /// The kernel took this many bytes: all that was offered, fewer, or none (its
        /// buffer is full).
        case sent(Int)
        /// The socket failed (reset, closed); the bytes are NIO's to fail with.
        case failed
    }

    /// Frames per `sendmsg`; more wait for the next call.
    static let maxFramesPerCall = 64

    /// The connection's socket descriptor, or nil when it cannot be found and proven.
    static func of(_ channel: any Channel) -> CInt? {
        #if os(Linux)
            guard let socket = storedProperty("socket", of: channel),
                let descriptor = storedProperty("descriptor", of: socket) as? CInt, descriptor >= 0,
                let local = channel.localAddress, let peer = channel.remoteAddress,
                address(of: descriptor, getsockname, is: local), address(of: descriptor, getpeername, is: peer)
            else { return nil }
            return descriptor
        #else
            return nil
        #endif
    }

    /// Sends `frames[start...]` (up to `maxFramesPerCall`, within `scratch`) in one call that
    /// neither blocks nor raises SIGPIPE: `send` for one frame, `sendmsg` for more. Returns
    /// what happened, the bytes offered and the frames they came from.
    static func send(
        _ frames: [ByteBuffer], from start: Int, descriptor: CInt, scratch: UnsafeMutableBufferPointer<iovec>
    ) -> (outcome: Outcome, offered: Int, frames: Int) {
        #if os(Linux)
            var count = 0
            var offered = 0
            var index = start
            while index < frames.count, count < scratch.count {
                // The pointers stay valid after the closure: `frames` keeps each buffer's
                // storage alive and unchanged until this function returns.
                frames[index].withUnsafeReadableBytes { bytes in
                    scratch[count] = iovec(
                        iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                }
                offered += frames[index].readableBytes
                count += 1
                index += 1
            }
            var message = msghdr()
            message.msg_iov = scratch.baseAddress
            message.msg_iovlen = count
            let flags = CInt(MSG_NOSIGNAL | MSG_DONTWAIT)
            while true {
                // One frame (the usual flush): `send`, which the kernel takes with less
                // set-up than a message header.
                let sent =
                    count == 1
                    ? sendOne(descriptor, scratch[0].iov_base, scratch[0].iov_len, flags)
                    : sendmsg(descriptor, &message, flags)
                if sent >= 0 { return (.sent(sent), offered, count) }
                switch errno {
                case EINTR: continue
                case EAGAIN, EWOULDBLOCK: return (.sent(0), offered, count)
                default: return (.failed, offered, count)
                }
            }
        #else
            return (.failed, 0, 0)
        #endif
    }

    /// Sends one frame with one `send` that neither blocks nor raises SIGPIPE.
    static func send(_ frame: ByteBuffer, descriptor: CInt) -> Outcome {
        #if os(Linux)
            let flags = CInt(MSG_NOSIGNAL | MSG_DONTWAIT)
            return frame.withUnsafeReadableBytes { bytes in
                while true {
                    let sent = sendOne(
                        descriptor, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, flags)
                    if sent >= 0 { return .sent(sent) }
                    switch errno {
                    case EINTR: continue
                    case EAGAIN, EWOULDBLOCK: return .sent(0)
                    default: return .failed
                    }
                }
            }
        #else
            return .failed
        #endif
    }

    /// Sets `TCP_NODELAY` on the socket; false when the kernel refused (the socket is going).
    @discardableResult
    static func setNoDelay(_ on: Bool, descriptor: CInt) -> Bool {
        #if os(Linux)
            var value: CInt = on ? 1 : 0
            return setsockopt(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, &value, socklen_t(MemoryLayout<CInt>.size))
                == 0
        #else
            return false
        #endif
    }

    #if os(Linux)
        /// The C library's `send` (the name is taken by `DirectSocket.send` here).
        private static func sendOne(_ descriptor: CInt, _ bytes: UnsafeMutableRawPointer?, _ count: Int, _ flags: CInt)
            -> Int
        {
            #if canImport(Glibc)
                Glibc.send(descriptor, bytes, count, flags)
            #else
                Musl.send(descriptor, bytes, count, flags)
            #endif
        }
    #endif

    /// A scratch array of `maxFramesPerCall` iovecs, for one event loop's connections; kept
    /// for the process's life.
    static func makeScratch() -> UnsafeMutableBufferPointer<iovec> {
        let scratch = UnsafeMutableBufferPointer<iovec>.allocate(capacity: maxFramesPerCall)
        scratch.initialize(repeating: iovec())
        return scratch
    }

    /// The stored property `label` of `subject` or of one of its superclasses.
    private static func storedProperty(_ label: String, of subject: Any) -> Any? {
        var mirror: Mirror? = Mirror(reflecting: subject)
        while let current = mirror {
            if let child = current.children.first(where: { $0.label == label }) { return child.value }
            mirror = current.superclassMirror
        }
        return nil
    }

    #if os(Linux)
        /// Whether `read` (getsockname or getpeername) of `descriptor` gives `expected`,
        /// compared as bytes.
        private static func address(
            of descriptor: CInt,
            _ read: (CInt, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> CInt,
            is expected: SocketAddress
        ) -> Bool {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let status = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { read(descriptor, $0, &length) }
            }
            guard status == 0 else { return false }
            // NIO read the channel's addresses with the same calls, so the bytes are equal
            // (family, port, address, padding) when the descriptor is this channel's.
            return withUnsafeBytes(of: &storage) { actual in
                expected.withSockAddr { address, size in
                    UnsafeRawBufferPointer(start: address, count: size).elementsEqual(actual.prefix(Int(length)))
                }
            }
        }
    #endif
}
