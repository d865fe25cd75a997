import AiravataCore
import NIOCore
import NIOWebSocket

/// The gateway's handle on one WebSocket: frames handed to it go straight to the handler
/// on its event loop. Detached when the connection closes.
///
/// The handler is held here directly, not in a `NIOLoopBoundBox`: every delivery passes
/// through this object, and on a node with many recipients each object a delivery touches
/// is a cache miss (the box was one more per delivery). `handler` is read and written on
/// `eventLoop` only, which is what makes the class sendable: `deliver` is called there, and
/// the methods that may be called elsewhere hop there first.
final class ConnectionOutlet: ConnectionSink, @unchecked Sendable {
    let eventLoop: any EventLoop
    private var handler: WebSocketConnectionHandler?

    init(handler: WebSocketConnectionHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = handler
    }

    func deliver(_ frame: ByteBuffer, cursor: EventCursor?) {
        eventLoop.assertInEventLoop()
        handler?.deliver(frame, cursor: cursor)
    }

    /// Closes the connection from any thread, e.g. at shutdown.
    func close(code: WebSocketErrorCode, reason: String) {
        eventLoop.execute { self.handler?.startClose(code: code, reason: reason) }
    }

    /// Tells the client to reconnect elsewhere and closes with 1012 (service restart).
    func closeForRestart(notice: ByteBuffer) {
        eventLoop.execute {
            guard let connection = self.handler else { return }
            connection.deliver(notice, cursor: nil)
            connection.startClose(code: CloseCodes.restart, reason: "Server restarting; reconnect")
        }
    }

    /// Breaks the handler ↔ outlet cycle; on the event loop.
    func detach() {
        eventLoop.assertInEventLoop()
        handler = nil
    }
}
