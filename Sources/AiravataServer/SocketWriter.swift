import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One WebSocket's outbound frames, written to its socket directly (`DirectSocket`) while NIO
/// holds none of its bytes. Frames are collected until the flush, then leave in one system
/// call. Whatever the kernel does not take goes to NIO, which writes it when the socket
/// drains; until NIO has, later frames follow it through NIO, so no frame overtakes another.
/// On the connection's event loop only.
final class SocketWriter {
    /// Why a connection could not be given a writer.
    enum Refusal: Error {
        /// NIO still holds bytes of the connection: try again at a later write.
        case notNow
        /// The socket's descriptor was not found or not proven: stay on NIO's path.
        case never
    }

    private let descriptor: CInt
    /// The connection's channel, asked whether it is still active before each send. (Held
    /// strongly: the handler drops this writer when the channel goes inactive.)
    private let channel: any Channel
    private let scratch: UnsafeMutableBufferPointer<iovec>
    /// The one frame written since the last flush, the usual case: kept here rather than in
    /// `unflushed`, whose storage would be one more object (a cache miss on a node with many
    /// recipients) touched by every delivery.
    private var single: ByteBuffer?
    /// The frames written since the last flush when there are several (then `single` is nil).
    private var unflushed: [ByteBuffer] = []
    /// Bytes written and not flushed yet; they count toward the outbound budget.
    private(set) var unflushedBytes = 0
    /// Hand-overs to NIO that NIO has not finished writing.
    private var inNIO = 0
    /// Counts a send the kernel did not take whole, and changes of `TCP_NODELAY`.
    private let metrics: GatewayMetrics
    /// With `TCPNoDelay.auto`: when the connection counts as streamed to. Nil: the socket's
    /// `TCP_NODELAY` stays as the listener gave it.
    private let streamThresholds: StreamDetector.Thresholds?
    private var streams: StreamDetector

    private init(
        descriptor: CInt, channel: any Channel, scratch: UnsafeMutableBufferPointer<iovec>, metrics: GatewayMetrics,
        streamThresholds: StreamDetector.Thresholds?, heardNanos: UInt64
    ) {
        self.streams = StreamDetector(heardNanos: heardNanos)
        self.descriptor = descriptor
        self.channel = channel
        self.scratch = scratch
        self.metrics = metrics
        self.streamThresholds = streamThresholds
    }

    /// A writer for the context's channel, if NIO holds none of its bytes now and its
    /// descriptor is proven.
    /// - Parameters:
    ///   - streamThresholds: given, the socket runs Nagle's algorithm while the connection is
    ///     streamed to (`TCPNoDelay.auto`); its `TCP_NODELAY` must be on now.
    ///   - heardNanos: when the client last sent a frame (or connected).
    static func claim(
        _ context: ChannelHandlerContext, scratch: UnsafeMutableBufferPointer<iovec>, metrics: GatewayMetrics,
        streamThresholds: StreamDetector.Thresholds?, heardNanos: UInt64
    ) -> Result<SocketWriter, Refusal> {
        let channel = context.channel
        guard channel.isActive, (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) == 0 else {
            return .failure(.notNow)
        }
        guard let descriptor = DirectSocket.of(channel) else { return .failure(.never) }
        return .success(
            SocketWriter(
                descriptor: descriptor, channel: channel, scratch: scratch, metrics: metrics,
                streamThresholds: streamThresholds, heardNanos: heardNanos))
    }

    /// Adds a frame, written at `nowNanos` (monotonic, read only for the first frame of a
    /// send with `TCPNoDelay.auto`: this runs for every frame to every connection); it
    /// leaves at the next flush.
    func write(_ frame: ByteBuffer, nowNanos: @autoclosure () -> UInt64) {
        if single == nil, unflushed.isEmpty, let streamThresholds { noteSend(at: nowNanos(), streamThresholds) }
        unflushedBytes += frame.readableBytes
        if let first = single {
            single = nil
            unflushed.append(first)
        } else if unflushed.isEmpty {
            single = frame
            return
        }
        unflushed.append(frame)
    }

    /// The first frame of a send: switches the socket to Nagle when the connection is being
    /// streamed to, and back when it was quiet. Set before the frame is sent; turning
    /// `TCP_NODELAY` on also sends at once whatever the kernel still holds.
    private func noteSend(at nowNanos: UInt64, _ thresholds: StreamDetector.Thresholds) {
        let change = streams.send(at: nowNanos, thresholds)
        guard change != .none else { return }
        switchSocket(streaming: change == .startStreaming)
    }

    /// A frame from the client at `nowNanos`: a connection that was streamed to gets
    /// `TCP_NODELAY` back at once, which also sends whatever the kernel held.
    func heard(at nowNanos: UInt64) {
        guard streamThresholds != nil, streams.heard(at: nowNanos) == .stopStreaming else { return }
        switchSocket(streaming: false)
    }

    /// Nagle's algorithm on the socket (`TCP_NODELAY` off) while `streaming`, counted. Only
    /// while the channel is active: after that the descriptor may be another socket's.
    private func switchSocket(streaming: Bool) {
        guard channel.isActive, DirectSocket.setNoDelay(!streaming, descriptor: descriptor) else { return }
        metrics.streaming(started: streaming)
    }

    /// When a flush may find the descriptor closed under it.
    enum FlushSite {
        /// Inside the pipeline (a reply to a client's message, say): NIO may be closing the
        /// channel right now. It closes the descriptor and marks the channel inactive in one
        /// step, then calls out to handlers (failed writes' promises, the frame decoder's
        /// last frames, and only then `channelInactive`); a flush from one of those callouts
        /// must ask the channel, or it would send to a descriptor that another connection
        /// accepted since may own.
        case pipeline
        /// A task of its own on the loop (`LoopFlusher`): NIO's callouts of a close run to the
        /// end, `channelInactive` included, before any later task, and the handler drops its
        /// writer in `channelInactive`. A writer still held at such a task belongs to an open
        /// channel, so the question (a cache miss on the channel and another on its flag,
        /// about 3 % of a delivering node) is skipped.
        case loopTask
    }

    /// Sends the frames written since the last flush: to the socket if NIO holds nothing of
    /// this connection's and the channel is active (see `FlushSite`); otherwise, and for
    /// what the kernel does not take, through NIO.
    func flush(_ context: ChannelHandlerContext, from site: FlushSite) {
        // Debug builds (the tests) check what release builds rely on.
        assert(site == .pipeline || channel.isActive, "a loop task found a writer on a closed channel")
        if let frame = single {
            return flushSingle(frame, context, from: site)
        }
        guard !unflushed.isEmpty else { return }
        guard inNIO == 0, site == .loopTask || channel.isActive else { return handOver(from: 0, context) }
        var start = 0
        while start < unflushed.count {
            let (outcome, offered, frames) = DirectSocket.send(
                unflushed, from: start, descriptor: descriptor, scratch: scratch)
            guard case .sent(var sent) = outcome else { return handOver(from: start, context) }
            if sent == offered {
                start += frames
                continue
            }
            // The kernel's buffer filled: skip what it took, hand NIO the rest.
            while sent >= unflushed[start].readableBytes {
                sent -= unflushed[start].readableBytes
                start += 1
            }
            unflushed[start].moveReaderIndex(forwardBy: sent)
            metrics.socketHandOver()
            return handOver(from: start, context)
        }
        clear()
    }

    /// `flush` of the one frame written: the same, without the array.
    private func flushSingle(_ frame: ByteBuffer, _ context: ChannelHandlerContext, from site: FlushSite) {
        guard inNIO == 0, site == .loopTask || channel.isActive else { return handOver(from: 0, context) }
        guard case .sent(let sent) = DirectSocket.send(frame, descriptor: descriptor) else {
            return handOver(from: 0, context)
        }
        guard sent < frame.readableBytes else { return clear() }
        // The kernel's buffer filled: NIO writes the rest.
        single?.moveReaderIndex(forwardBy: sent)
        metrics.socketHandOver()
        handOver(from: 0, context)
    }

    /// Hands the unflushed frames to NIO and stops: for the close, after which nothing but
    /// the close frame is written, through NIO.
    func release(_ context: ChannelHandlerContext) {
        // The close frame follows these through NIO: it must not wait for an acknowledgement.
        if streams.streaming { switchSocket(streaming: false) }
        let frames = pending
        clear()
        for frame in frames { context.write(NIOAny(frame), promise: nil) }
    }

    /// The unflushed frames, in order.
    private var pending: [ByteBuffer] {
        if let single { return [single] }
        return unflushed
    }

    private func handOver(from start: Int, _ context: ChannelHandlerContext) {
        // Settled before NIO is called: a write that NIO fails makes it read the socket
        // before closing it, which can reach this connection's handler and a new write. That
        // write must find these frames gone from here and NIO marked as holding bytes, or it
        // would send them a second time.
        let frames = pending[start...]
        clear()
        inNIO += 1
        let written = context.eventLoop.makePromise(of: Void.self)
        // NIO completes writes in order: when the last is done (or failed), all are.
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        written.futureResult.whenComplete { _ in bound.value.inNIO -= 1 }
        let last = frames.endIndex - 1
        for index in frames.indices {
            context.write(NIOAny(frames[index]), promise: index == last ? written : nil)
        }
        context.flush()
    }

    private func clear() {
        single = nil
        // A burst (the deliveries queued during admission, say) does not keep its size.
        if !unflushed.isEmpty {
            unflushed.removeAll(keepingCapacity: unflushed.count <= DirectSocket.maxFramesPerCall)
        }
        unflushedBytes = 0
    }
}
