/// Waits (bounded) for a condition the node reaches asynchronously, such as a released
/// connection lease; returns whether it held in time.
///
/// The default bound is generous: it only costs time when the condition never holds, and
/// with the whole suite running in parallel on two cores an in-process server has been seen
/// to take over 5 s to handle a close (LimitTests). A test that means "not within X" names
/// its own bound.
public func eventually(
    within timeout: Duration = .seconds(15),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return true }
        try? await clock.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
