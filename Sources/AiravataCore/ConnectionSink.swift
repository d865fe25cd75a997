package import NIOCore

/// The gateway's view of one client connection: where to put its frames.
///
/// The gateway batches deliveries per event loop and calls `deliver` on that loop, so an
/// implementation writes straight to its channel without another hop.
package protocol ConnectionSink: AnyObject, Sendable {
    var eventLoop: any EventLoop { get }

    /// Called on `eventLoop` only. `frame` holds the wire bytes made by the gateway's
    /// `FrameEncoding`, shared by every recipient of the event: write it as it is. `cursor`
    /// is the event's place in the replay log, nil for messages that are not events.
    func deliver(_ frame: ByteBuffer, cursor: EventCursor?)
}
