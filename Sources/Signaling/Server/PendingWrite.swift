import Synchronization

/// A store write a frame started (a chat, a recipient's ack), which the frame's connection waits
/// for before its next frame: ``SignalingHub/receive(_:on:)`` waits for it outside the hub, so
/// the hub's actor is not entered again when the write commits (issue 17), and a connection
/// still has at most one write in flight and its answers in order, as when the hub awaited it.
final class PendingWrite: Sendable {
    private enum State {
        case waiting(CheckedContinuation<Void, Never>?)
        case done
    }

    private let state = Mutex(State.waiting(nil))

    /// The write was answered (its `ack` or `error` is sent).
    func finish() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state = .done }
            if case .waiting(let waiter) = state { return waiter }
            return nil
        }
        waiter?.resume()
    }

    /// Returns once ``finish()`` was called.
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if case .done = state { return true }
                state = .waiting(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
