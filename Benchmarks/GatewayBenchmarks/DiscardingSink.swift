import AiravataCore
import NIOCore

/// A connection that drops what it is given: the routing benchmarks measure finding the
/// recipients and handing the frame over, not a socket.
final class DiscardingSink: ConnectionSink {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func deliver(_ frame: ByteBuffer, cursor: EventCursor?) {}
}
