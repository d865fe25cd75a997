import AiravataCore
import AiravataProtocol
import AiravataServer
import NIOCore
import Testing

@Suite("Event frames written in one buffer")
struct WebSocketTextFramesTests {
    @Test("the frame of an event is the text frame of its message, with and without a cursor, at every length")
    func sameAsTheMessage() {
        let frames = WebSocketTextFrames()
        let cursors: [EventCursor?] = [
            nil, EventCursor(milliseconds: 0, sequence: 0), EventCursor(milliseconds: 1_795_713_253_458, sequence: 7),
            EventCursor(milliseconds: 9, sequence: 10), EventCursor(milliseconds: .max, sequence: .max),
        ]
        // Heads around the 126- and 65,536-byte edges where the frame header grows.
        for headLength in [10, 100, 110, 125, 126, 200, 65_480, 65_530, 70_000] {
            let head = ByteBuffer(string: #"{"type":"x","data":""# + String(repeating: "a", count: headLength))
            let event = RoutedEvent(routing: EventRouting(category: .system), acceptedAtMicros: 0, envelopeHead: head)
            for cursor in cursors {
                let direct = frames.frame(event, cursor: cursor)
                let plain = frames.frame(event.message(cursor: cursor))
                #expect(direct == plain, "head \(headLength) bytes, cursor \(String(describing: cursor))")
            }
        }
    }
}
