import NIOCore
import Synchronization

/// Caps the connections that have not yet proved who they are: accepted sockets that have
/// not finished a WebSocket upgrade and authentication, nor sent an authenticated request.
///
/// Such connections cost a node memory and a descriptor while costing an attacker nothing,
/// so they are bounded in total and per client address. The per-address cap is not applied
/// to trusted proxies: behind an ingress every connection comes from the ingress.
package final class PendingConnectionGate: Sendable {
    package struct Limits: Sendable, Equatable {
        /// Pending connections on this node; 0 turns the cap off.
        package var total: Int
        /// Pending connections from one address; 0 turns the cap off.
        package var perIP: Int

        package init(total: Int = 1024, perIP: Int = 256) {
            self.total = total
            self.perIP = perIP
        }
    }

    private struct State {
        var total = 0
        var perIP: [String: Int] = [:]
    }

    package let limits: Limits
    private let state = Mutex(State())

    package init(limits: Limits) {
        self.limits = limits
    }

    /// Why a connection was not let in; nil when it was (and then holds a slot).
    package enum Refusal: String, Sendable {
        case total
        case perIP = "per_ip"
    }

    package func enter(ip: String, countPerIP: Bool) -> Refusal? {
        state.withLock { state in
            if limits.total > 0, state.total >= limits.total { return .total }
            if countPerIP, limits.perIP > 0, state.perIP[ip, default: 0] >= limits.perIP { return .perIP }
            state.total += 1
            if countPerIP { state.perIP[ip, default: 0] += 1 }
            return nil
        }
    }

    /// Counts a connection that already holds a slot against one client address as well:
    /// the client a trusted proxy names once the request head is read.
    package func enterForwarded(ip: String) -> Refusal? {
        state.withLock { state in
            if limits.perIP > 0, state.perIP[ip, default: 0] >= limits.perIP { return .perIP }
            state.perIP[ip, default: 0] += 1
            return nil
        }
    }

    package func leaveForwarded(ip: String) {
        state.withLock { state in
            let left = state.perIP[ip, default: 1] - 1
            state.perIP[ip] = left > 0 ? left : nil
        }
    }

    package func leave(ip: String, countedPerIP: Bool) {
        state.withLock { state in
            state.total -= 1
            guard countedPerIP else { return }
            let left = state.perIP[ip, default: 1] - 1
            state.perIP[ip] = left > 0 ? left : nil
        }
    }

    /// Connections holding a slot now (for metrics and tests).
    package var pending: Int { state.withLock { $0.total } }
}

/// Told to the gate handler (an outbound user event) when a connection has proved itself:
/// its WebSocket was admitted or refused, or it sent an authenticated request.
package struct ConnectionSettled: Sendable {
    package init() {}
}

/// Told to the gate handler by the HTTP handler when a trusted proxy's request head names
/// the client it forwards for.
struct ForwardedClient: Sendable {
    var ip: String
}

/// First in every child pipeline: takes a slot at accept, closes the connection at once when
/// the gate is full, and gives the slot back when the connection settles or closes.
final class PendingConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private let gate: PendingConnectionGate
    private let countPerIP: Bool
    private let ip: String
    private let onRefused: @Sendable (PendingConnectionGate.Refusal) -> Void
    private var holding = false
    /// The client a trusted proxy named, counted per address while the slot is held.
    private var forwarded: String?

    init(
        gate: PendingConnectionGate, ip: String, countPerIP: Bool,
        onRefused: @escaping @Sendable (PendingConnectionGate.Refusal) -> Void
    ) {
        self.gate = gate
        self.ip = ip
        self.countPerIP = countPerIP
        self.onRefused = onRefused
    }

    func channelActive(context: ChannelHandlerContext) {
        if let refusal = gate.enter(ip: ip, countPerIP: countPerIP) {
            onRefused(refusal)
            context.close(promise: nil)
            return
        }
        holding = true
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        settle()
        context.fireChannelInactive()
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        switch event {
        case is ConnectionSettled:
            settle()
            // Its work is done: every later write and flush would only pass through it.
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        case let client as ForwardedClient:
            guard holding, forwarded == nil else { break }
            if let refusal = gate.enterForwarded(ip: client.ip) {
                onRefused(refusal)
                context.close(promise: nil)
            } else {
                forwarded = client.ip
            }
        default:
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed(())
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        settle()
    }

    private func settle() {
        guard holding else { return }
        holding = false
        gate.leave(ip: ip, countedPerIP: countPerIP)
        if let forwarded {
            gate.leaveForwarded(ip: forwarded)
            self.forwarded = nil
        }
    }
}
