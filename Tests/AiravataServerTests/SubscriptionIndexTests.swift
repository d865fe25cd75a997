import AiravataCore
import AiravataProtocol
import NIOCore
import NIOEmbedded
import Testing

/// The node's routing table on its own: who an event reaches after subscriptions come and go.
@Suite("Subscription index")
struct SubscriptionIndexTests {
    final class Sink: ConnectionSink, @unchecked Sendable {  // compared by identity only
        let eventLoop: any EventLoop = EmbeddedEventLoop()
        func deliver(_ frame: ByteBuffer, cursor: EventCursor?) {}
    }

    static let event = EventRouting(category: .experiment, experimentID: "e", projectID: "p", ownerID: "u")
    static let admin = Principal(userID: "ops", roles: ["admin"])

    static func recipients(_ index: SubscriptionIndex) -> [ObjectIdentifier] {
        index.recipients(of: event) { Authorization.mayReceive(event, principal: $0) }.map { ObjectIdentifier($0) }
    }

    @Test("each connection once, across keys; none after it unsubscribes or is removed")
    func comeAndGo() {
        let index = SubscriptionIndex()
        let (first, second) = (Sink(), Sink())
        index.add(1, sink: first, principal: Self.admin)
        index.add(2, sink: second, principal: Principal(userID: "u"))
        #expect(index.subscribe(1, to: SubscriptionKey(.project, "p"), limit: 10) == .added)
        #expect(index.subscribe(1, to: SubscriptionKey(.experiment, "e"), limit: 10) == .added)
        #expect(index.subscribe(2, to: SubscriptionKey(.user, "u"), limit: 10) == .added)
        #expect(Set(Self.recipients(index)) == [ObjectIdentifier(first), ObjectIdentifier(second)])
        #expect(Self.recipients(index).count == 2, "a connection on two of the event's keys got it twice")
        #expect(index.unsubscribe(1, from: SubscriptionKey(.project, "p")))
        #expect(Self.recipients(index).count == 2)
        #expect(index.unsubscribe(1, from: SubscriptionKey(.experiment, "e")))
        #expect(Self.recipients(index) == [ObjectIdentifier(second)])
        index.remove(2)
        #expect(Self.recipients(index).isEmpty)
    }

    @Test("an id added again replaces its connection, without the old one's subscriptions")
    func replaced() {
        let index = SubscriptionIndex()
        let (old, new) = (Sink(), Sink())
        index.add(7, sink: old, principal: Self.admin)
        #expect(index.subscribe(7, to: SubscriptionKey(.project, "p"), limit: 10) == .added)
        index.add(7, sink: new, principal: Self.admin)
        #expect(Self.recipients(index).isEmpty, "the replaced connection still receives")
        #expect(index.subscriptions(of: 7).isEmpty)
        #expect(index.subscribe(7, to: SubscriptionKey(.project, "p"), limit: 10) == .added)
        #expect(Self.recipients(index) == [ObjectIdentifier(new)])
        index.remove(7)
        #expect(Self.recipients(index).isEmpty)
        #expect(index.connectionCount == 0)
    }

    @Test("a key type that empties and fills again is looked up again; what was never there removes nothing")
    func typesEmptyAndFill() {
        let index = SubscriptionIndex()
        let (a, b, c) = (Sink(), Sink(), Sink())
        let project = SubscriptionKey(.project, "p")
        index.add(1, sink: a, principal: Self.admin)
        index.add(2, sink: b, principal: Self.admin)
        index.add(3, sink: c, principal: Self.admin)
        #expect(index.subscribe(1, to: project, limit: 10) == .added)
        #expect(index.subscribe(2, to: project, limit: 10) == .added)
        #expect(!index.unsubscribe(3, from: project), "3 never subscribed")
        index.remove(3)
        #expect(index.unsubscribe(1, from: project))
        #expect(Self.recipients(index) == [ObjectIdentifier(b)], "one of two subscribers left, and the key hid")
        #expect(index.subscribe(1, to: SubscriptionKey(.project, "other"), limit: 10) == .added)
        #expect(index.unsubscribe(1, from: SubscriptionKey(.project, "other")))
        #expect(Self.recipients(index) == [ObjectIdentifier(b)], "another project's last subscriber hid this one")
        index.remove(2)
        #expect(Self.recipients(index).isEmpty)
        index.add(3, sink: c, principal: Self.admin)
        #expect(index.subscribe(3, to: project, limit: 10) == .added)
        #expect(Self.recipients(index) == [ObjectIdentifier(c)], "the type, empty before, is not looked up again")
    }
}
