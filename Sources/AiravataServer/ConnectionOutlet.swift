import AiravataCore
import NIOCore
import NIOWebSocket

/// The gateway's handle on one WebSocket: frames handed to it go straight to the handler
/// on its event loop. Detached when the connection closes.
final class ConnectionOutlet: ConnectionSink {
    let eventLoop: any EventLoop
    private let handler: NIOLoopBoundBox<WebSocketConnectionHandler?>

    init(handler: WebSocketConnectionHandler, eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBoundBox(handler, eventLoop: eventLoop)
    }

    func deliver(_ frame: ByteBuffer, cursor: EventCursor?) {
        handler.value?.deliver(frame, cursor: cursor)
    }

    /// Closes the connection from any thread, e.g. at shutdown.
    func close(code: WebSocketErrorCode, reason: String) {
        let handler = self.handler
        eventLoop.execute { handler.value?.startClose(code: code, reason: reason) }
    }

    /// Tells the client to reconnect elsewhere and closes with 1012 (service restart).
    func closeForRestart(notice: ByteBuffer) {
        let handler = self.handler
        eventLoop.execute {
            guard let connection = handler.value else { return }
            connection.deliver(notice, cursor: nil)
            connection.startClose(code: CloseCodes.restart, reason: "Server restarting; reconnect")
        }
    }

    /// Breaks the handler ↔ outlet cycle; on the event loop.
    func detach() {
        handler.value = nil
    }
}
