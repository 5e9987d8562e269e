/// How long a test waits for something that must happen. Far longer than it takes on an idle
/// machine, so that a loaded one (a parallel build, `stress --cpu 2`) only makes a test slower and
/// never makes it fail: tests assert on what happened, not on how fast. Speed is measured in
/// `bench/`.
public enum TestDeadline {
    /// For an event that takes milliseconds to a few seconds on an idle machine.
    public static let event: Duration = .seconds(30)
}

/// Thrown when a bounded wait in a test runs out.
public struct TestTimeout: Error, CustomStringConvertible {
    public var what: String
    public var limit: Duration

    public init(what: String, limit: Duration) {
        self.what = what
        self.limit = limit
    }

    public var description: String { "timed out after \(limit) waiting for \(what)" }
}

/// Runs `body`, failing with ``TestTimeout`` if it has not finished after `limit`.
public func withTimeout<T: Sendable>(
    _ what: String, limit: Duration = TestDeadline.event, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw TestTimeout(what: what, limit: limit)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Checks `condition` every `interval` until it holds; throws ``TestTimeout`` after `limit`,
/// describing the wait with `what` as it reads then (so it can show the state that was reached).
/// Runs on the caller's actor, so both closures may read its state.
public func waitUntil(
    _ what: @autoclosure () -> String, limit: Duration = TestDeadline.event, interval: Duration = .milliseconds(10),
    isolation: isolated (any Actor)? = #isolation, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + limit
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TestTimeout(what: what(), limit: limit) }
        try await Task.sleep(for: interval)
    }
}

/// The first non-nil result of `produce`, checked every `interval`; throws ``TestTimeout`` after
/// `limit`. Runs on the caller's actor, like ``waitUntil(_:limit:interval:isolation:_:)``.
public func waitFor<T>(
    _ what: @autoclosure () -> String, limit: Duration = TestDeadline.event, interval: Duration = .milliseconds(10),
    isolation: isolated (any Actor)? = #isolation, _ produce: () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + limit
    while true {
        if let value = try await produce() { return value }
        guard ContinuousClock.now < deadline else { throw TestTimeout(what: what(), limit: limit) }
        try await Task.sleep(for: interval)
    }
}

extension Duration {
    /// The duration in milliseconds, for the figures tests print.
    public var inMilliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
