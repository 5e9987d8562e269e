import NIOCore
import Synchronization

/// What other threads hand to the signaling connections of one event loop (issue 17): the
/// store's writer answers a whole committed batch — acks to senders, deliveries to recipients —
/// and the hub writes frames from its actor. Each used to be an `EventLoop.execute` of its own
/// (two locks, a closure and a task per frame), and each frame scheduled one more task to
/// flush its connection. Here a frame is appended to the loop's list under one lock; the first
/// frame of a list schedules one task, which writes everything the list holds by then and
/// flushes each connection it wrote to once (one `writev` per connection per batch).
///
/// Order: items of one connection are taken in the order they were posted (one list per loop,
/// first in, first out), so a connection's frames keep the order the hub and the writer sent
/// them in, and a close posted after a frame comes after it.
final class LoopOutbox: Sendable {
    /// One thing for one connection of the loop.
    enum Item: Sendable {
        /// A text frame to send.
        case send(NIOLoopBound<SignalingConnectionHandler>, String)
        /// The hub ends the connection (after the frames posted before).
        case close(NIOLoopBound<SignalingConnectionHandler>)
        /// The connection's writes in flight are all answered and it waits for that
        /// (``PipelinedWrites``): its next frame may go.
        case resume(NIOLoopBound<SignalingConnectionHandler>)
    }

    private struct State {
        var items: [Item] = []
        /// A task to take the items is queued on the loop and has not started taking them.
        var scheduled = false
    }

    let eventLoop: any EventLoop
    private let state = Mutex(State())

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Appends `item`; schedules the loop's task if none is waiting to run. Any thread.
    func post(_ item: Item) {
        let schedule = state.withLock { state in
            state.items.append(item)
            guard !state.scheduled else { return false }
            state.scheduled = true
            return true
        }
        if schedule {
            eventLoop.execute { self.run() }
        }
    }

    /// On the loop: everything posted so far, then one flush per connection written to.
    private func run() {
        var items: [Item] = []
        state.withLock { state in
            state.scheduled = false
            swap(&items, &state.items)
        }
        var written: [SignalingConnectionHandler] = []
        for item in items {
            switch item {
            case .send(let bound, let text):
                let handler = bound.value
                if handler.write(text: text) { written.append(handler) }
            case .close(let handler):
                handler.value.closeFromHub()
            case .resume(let handler):
                handler.value.writesAnswered()
            }
        }
        for handler in written { handler.flushWritten() }
    }
}

/// The loop outboxes of one signaling endpoint, one per event loop its connections are on,
/// made on first use. Keyed by the loop's identity while holding the loop, so a key is never
/// reused by another loop; bounded by the number of loops of the server's group.
final class LoopOutboxes: Sendable {
    private let outboxes = Mutex<[ObjectIdentifier: LoopOutbox]>([:])

    init() {}

    func outbox(for loop: any EventLoop) -> LoopOutbox {
        outboxes.withLock { outboxes in
            let key = ObjectIdentifier(loop)
            if let outbox = outboxes[key] { return outbox }
            let outbox = LoopOutbox(eventLoop: loop)
            outboxes[key] = outbox
            return outbox
        }
    }
}

/// The writes of one connection's chat fast path that the store has not answered yet
/// (issue 17). A chat or an ack does not wait for the previous one's commit: the store's
/// writer takes writes in order and answers them in order, so acks still leave in the order
/// of the chats. Any other frame waits until every write before it is answered (the hub then
/// sees what those writes did), and so does a fast frame once ``limit`` writes are in flight
/// (the socket is then not read: TCP's back-pressure, as with one write at a time).
///
/// One atomic word: the count in flight times two, plus one while the connection waits for
/// the count to reach zero. The connection's loop begins writes and starts waiting; the
/// writer's thread ends them and, ending the last while the loop waits, clears the word and
/// tells the loop (``LoopOutbox/Item/resume(_:)``). Only the loop adds, so a wait that finds
/// the count at zero cannot miss an end.
final class PipelinedWrites: Sendable {
    /// Writes in flight at most before a fast frame waits too.
    static let limit = 8

    private let state = Atomic<Int>(0)

    init() {}

    var inFlight: Int { state.load(ordering: .acquiring) >> 1 }

    /// The loop hands a write to the store.
    func begin() {
        state.wrappingAdd(2, ordering: .acquiringAndReleasing)
    }

    /// The loop's write was not taken after all (nothing was submitted).
    func cancel() {
        state.wrappingSubtract(2, ordering: .acquiringAndReleasing)
    }

    /// The loop waits for every write in flight: false when there is none (go on now), true
    /// when ``end()`` will say so once the last is answered.
    func waitUntilIdle() -> Bool {
        let word = state.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
        guard word >> 1 == 0 else { return true }
        state.wrappingSubtract(1, ordering: .acquiringAndReleasing)
        return false
    }

    /// A write was answered (the writer's thread): true when it was the last one and the loop
    /// waits for it, which the caller must then resume.
    func end() -> Bool {
        let word = state.wrappingSubtract(2, ordering: .acquiringAndReleasing).newValue
        return word == 1 && state.compareExchange(expected: 1, desired: 0, ordering: .acquiringAndReleasing).exchanged
    }
}
