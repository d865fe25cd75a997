import NIOCore
import NIOHTTP1

/// Bytes the HTTP decoder cannot read as a request: the requests read before them are
/// answered first, in order, then the 400, then the close.
extension HTTPRequestHandler {
    /// A request the HTTP decoder cannot read is answered 400, and the connection closes once
    /// the answer is written (the decoder, failed, reads nothing more, and closes nothing).
    /// Requests read before the bad bytes are answered first, in order, then the 400. NIO's
    /// protocol-error handler wrote the 400 at once from its own place in every connection's
    /// pipeline, where each part of each request passed it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Behind the last answer (llhttp also fails on any byte after `connection: close`),
        // nothing is answered or counted.
        if error is HTTPParserError, !isUpgraded, !malformedAfterHeld, !closing {
            api.malformedRequest()
            if isAnswering || !held.isEmpty {
                malformedAfterHeld = true
                syncReading(context: context)
            } else {
                answerMalformed(context: context)
            }
        }
        context.fireErrorCaught(error)
    }

    /// The 400 for bytes the decoder could not read, and the close.
    func answerMalformed(context: ChannelHandlerContext) {
        malformedAfterHeld = false
        answeringHEAD = false
        respondAndClose(.error(.badRequest, "Malformed HTTP request"), context: context)
    }

    private var isUpgraded: Bool {
        if case .upgraded = state { true } else { false }
    }
}
