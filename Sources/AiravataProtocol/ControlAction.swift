/// The `data.action` values of `system_status` messages that steer a client: the ones the
/// gateway sends (`connected`, `subscribed`, `recovery_failed`, …) and the two a client sends.
///
/// Clients act on them (a `recovery_failed` makes the official clients refetch their
/// state), so only the gateway may send them; a producer's `system_status` carrying one is
/// refused.
package enum ControlAction: String, Sendable, CaseIterable {
    case subscribe
    case unsubscribe
    case subscribed
    case unsubscribed
    case connected
    /// Sent before a node shuts down.
    case reconnect
    case replayComplete = "replay_complete"
    case recoveryFailed = "recovery_failed"
}
