import AiravataProtocol
import Synchronization

/// The node's local routing table: which connections listen to which key.
///
/// Also the at-most-once filter: each delivery pass stamps the connections it picked with
/// the pass number, so a connection matching several keys is picked once.
package final class SubscriptionIndex: Sendable {
    package typealias ConnectionID = UInt64

    /// A class so that the per-event scan touches one reference per connection instead of
    /// copying its claims; only ever used under the index's lock.
    private final class Entry: @unchecked Sendable {  // mutated only under the index lock
        let sink: any ConnectionSink
        /// The sink's event loop, by identity: recipients are grouped by it without asking
        /// each sink (a witness call and a retained existential per recipient).
        let loop: ObjectIdentifier
        let principal: Principal
        var keys: Set<SubscriptionKey> = []
        var lastPass: UInt64 = 0

        init(sink: any ConnectionSink, principal: Principal) {
            self.sink = sink
            self.loop = ObjectIdentifier(sink.eventLoop)
            self.principal = principal
        }
    }

    /// An event's recipients on one event loop, in the order the scan found them; never
    /// empty.
    package struct LoopGroup: Sendable {
        package let loop: ObjectIdentifier
        package var sinks: [any ConnectionSink]
    }

    private struct State {
        var connections: [ConnectionID: Entry] = [:]
        /// Each key's connections, with their entries: a delivery reads each recipient's
        /// entry from here, without a second lookup in `connections`.
        var subscribers: [SubscriptionKey: [ConnectionID: Entry]] = [:]
        var pass: UInt64 = 0
        /// How many keys of each resource type `subscribers` holds (by `ResourceType.slot`):
        /// an event's key of a type nobody on this node subscribes to is neither hashed nor
        /// looked up (a task event names four keys).
        var keysOfType = InlineArray<6, Int>(repeating: 0)

        mutating func add(_ entry: Entry, _ id: ConnectionID, to key: SubscriptionKey) {
            if subscribers[key] == nil { keysOfType[key.resource.slot] += 1 }
            subscribers[key, default: [:]][id] = entry
        }

        mutating func remove(_ id: ConnectionID, from key: SubscriptionKey) {
            guard subscribers[key]?.removeValue(forKey: id) != nil, subscribers[key]?.isEmpty == true else { return }
            subscribers[key] = nil
            keysOfType[key.resource.slot] -= 1
        }
    }

    private let state = Mutex(State())

    package init() {}

    package var connectionCount: Int { state.withLock { $0.connections.count } }

    /// An id added again replaces its connection, and the subscriptions go with the one
    /// replaced (each key's table holds the entry itself: left there, it would go on
    /// receiving).
    package func add(_ id: ConnectionID, sink: any ConnectionSink, principal: Principal) {
        state.withLock { state in
            if let replaced = state.connections[id] { Self.unsubscribeAll(id, replaced, &state) }
            state.connections[id] = Entry(sink: sink, principal: principal)
        }
    }

    private static func unsubscribeAll(_ id: ConnectionID, _ entry: Entry, _ state: inout State) {
        for key in entry.keys { state.remove(id, from: key) }
    }

    package func remove(_ id: ConnectionID) {
        state.withLock { state in
            guard let entry = state.connections.removeValue(forKey: id) else { return }
            Self.unsubscribeAll(id, entry, &state)
        }
    }

    package enum SubscribeResult: Equatable, Sendable {
        case added
        case alreadySubscribed
        case limitReached
        case unknownConnection
    }

    package func subscribe(_ id: ConnectionID, to key: SubscriptionKey, limit: Int) -> SubscribeResult {
        state.withLock { state in
            guard let entry = state.connections[id] else { return .unknownConnection }
            if entry.keys.contains(key) { return .alreadySubscribed }
            guard entry.keys.count < limit else { return .limitReached }
            entry.keys.insert(key)
            state.add(entry, id, to: key)
            return .added
        }
    }

    /// Returns whether the connection was subscribed.
    package func unsubscribe(_ id: ConnectionID, from key: SubscriptionKey) -> Bool {
        state.withLock { state in
            guard let entry = state.connections[id], entry.keys.remove(key) != nil else { return false }
            state.remove(id, from: key)
            return true
        }
    }

    package func subscriptions(of id: ConnectionID) -> Set<SubscriptionKey> {
        state.withLock { $0.connections[id]?.keys ?? [] }
    }

    /// The connections an event reaches, each once, filtered by `admit`.
    package func recipients(
        of routing: EventRouting,
        admit: (Principal) -> Bool
    ) -> [any ConnectionSink] {
        recipientsByLoop(of: routing, admit: admit).flatMap(\.sinks)
    }

    /// The same, grouped by event loop (a handful of groups: one per loop with a recipient),
    /// as the gateway hands them over: one task per loop, not one per connection.
    package func recipientsByLoop(
        of routing: EventRouting,
        admit: (Principal) -> Bool
    ) -> [LoopGroup] {
        state.withLock { state in
            var groups: [LoopGroup] = []
            if routing.isBroadcast {
                for entry in state.connections.values where admit(entry.principal) { Self.add(entry, to: &groups) }
                return groups
            }
            state.pass &+= 1
            let pass = state.pass
            routing.forEachKey { key in
                guard state.keysOfType[key.resource.slot] > 0, let entries = state.subscribers[key] else { return }
                for entry in entries.values where entry.lastPass != pass {
                    entry.lastPass = pass
                    if admit(entry.principal) { Self.add(entry, to: &groups) }
                }
            }
            return groups
        }
    }

    private static func add(_ entry: Entry, to groups: inout [LoopGroup]) {
        if let index = groups.firstIndex(where: { $0.loop == entry.loop }) {
            groups[index].sinks.append(entry.sink)
        } else {
            groups.append(LoopGroup(loop: entry.loop, sinks: [entry.sink]))
        }
    }

    /// Every connection, for node-wide messages such as statistics and shutdown.
    package func allSinks() -> [any ConnectionSink] {
        state.withLock { $0.connections.values.map(\.sink) }
    }

    /// Every connection, grouped by event loop.
    package func allByLoop() -> [LoopGroup] {
        recipientsByLoop(of: EventRouting(category: .system)) { _ in true }
    }
}

extension ResourceType {
    /// A small number per type, for tables indexed by type.
    fileprivate var slot: Int {
        switch self {
        case .experiment: 0
        case .task: 1
        case .project: 2
        case .user: 3
        case .worker: 4
        case .system: 5
        }
    }
}
