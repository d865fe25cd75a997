/// Waits (bounded) for a condition the node reaches asynchronously, such as a released
/// connection lease; returns whether it held in time.
public func eventually(
    within timeout: Duration = .seconds(5),
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
