import Foundation
import Synchronization
import Testing
@testable import Signaling

/// Issue 17: the count of a connection's fast-path writes in flight, shared by its event loop
/// (begins, waits) and the store's thread (ends). A wait must be resumed exactly once, by the
/// end of the last write, and never when nothing waits.
@Suite struct PipelinedWritesTests {
    @Test func theLastEndResumesAWaitAndNothingElseDoes() {
        let writes = PipelinedWrites()
        #expect(!writes.waitUntilIdle(), "nothing in flight: go on at once")
        writes.begin()
        writes.begin()
        writes.begin()
        #expect(!writes.end(), "nobody waits")
        #expect(writes.inFlight == 2)
        #expect(writes.waitUntilIdle())
        #expect(!writes.end())
        #expect(writes.end(), "the last one, with the loop waiting")
        #expect(writes.inFlight == 0)
        #expect(!writes.waitUntilIdle(), "the wait was cleared")
        writes.begin()
        writes.cancel()
        #expect(writes.inFlight == 0 && !writes.waitUntilIdle())
    }

    /// One thread plays the loop (begins writes, now and then waits for them), another the
    /// store's writer (ends them). Every wait that was told "wait" is resumed by exactly one end.
    /// What the two threads share (a class: a `Mutex` or an `Atomic` cannot be captured).
    final class Shared: Sendable {
        let queue = Mutex<[Int]>([])
        let resumed = Atomic<Int>(0)
    }

    @Test func aWaitIsResumedExactlyOnceUnderContention() async {
        let writes = PipelinedWrites()
        let shared = Shared()
        let rounds = 20_000
        let writer = Thread {
            var ended = 0
            while ended < rounds {
                let count = shared.queue.withLock { pending -> Int in
                    let count = pending.count
                    pending.removeAll()
                    return count
                }
                for _ in 0..<count where writes.end() { shared.resumed.wrappingAdd(1, ordering: .relaxed) }
                ended += count
            }
        }
        writer.start()
        var waits = 0
        for index in 0..<rounds {
            writes.begin()
            shared.queue.withLock { $0.append(index) }
            if index % 7 == 0, writes.waitUntilIdle() {
                waits += 1
                // The loop is held until resumed, as the handler is (busy).
                while shared.resumed.load(ordering: .relaxed) < waits { sched_yield() }
            }
        }
        while writes.inFlight > 0 { sched_yield() }
        #expect(shared.resumed.load(ordering: .relaxed) == waits)
        #expect(!writes.waitUntilIdle())
    }
}
