import Foundation
import Synchronization
import Logging
import Testing
import TestSupport
@testable import Signaling

/// The store's group commit (issue 17): concurrent writes share transactions, every write that
/// returned is on disk, and one write's refusal does not undo the others of its batch.
@Suite struct StoreWriterTests {
    @Test func concurrentWritesShareCommitsAndAllAreDurable() async throws {
        let directory = TemporaryDirectory("group-commit")
        let store = try await SignalingStore.open(directory: directory.path, logger: Logger(label: "test"))
        let writes = 400
        try await withThrowingTaskGroup(of: [String].self) { group in
            for n in 0..<writes {
                group.addTask {
                    try await store.enqueue(sender: "alice", id: "m\(n)", recipients: ["bob"], frame: "{\"n\":\(n)}")
                }
            }
            for try await stored in group { #expect(stored == ["bob"]) }
        }
        let commits = store.commitCount
        // One commit per write is what the store did before; concurrent writes must share.
        #expect(commits < writes / 2, "\(commits) commits for \(writes) concurrent writes")
        await store.close()

        // Reopened (as after a crash once the writes had returned): every message is there.
        let reopened = try await SignalingStore.open(directory: directory.path, logger: Logger(label: "test"))
        let pending = try await reopened.pending(for: "bob")
        #expect(pending.count == writes)
        #expect(Set(pending.map(\.id)) == Set((0..<writes).map { "m\($0)" }))
        await reopened.close()
    }

    @Test func aRefusedWriteDoesNotUndoTheOthersInItsBatch() async throws {
        let directory = TemporaryDirectory("group-commit-refusal")
        var limits = StoreLimits()
        limits.recipientMessages = 10
        let store = try await SignalingStore.open(directory: directory.path, limits: limits, logger: Logger(label: "test"))
        // Twenty writes at once into a queue that takes ten: ten are stored, ten refused.
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for n in 0..<20 {
                group.addTask {
                    (try? await store.enqueue(sender: "alice", id: "m\(n)", recipients: ["bob"], frame: "x")) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 10)
        #expect(try await store.pending(for: "bob").count == 10)
        #expect(try await store.usage("r:bob").messages == 10)
        await store.close()
    }

    /// The key cache serves chat's lookups, and a name the store forgot is forgotten there too:
    /// a new key can take it afterwards.
    @Test func forgottenNamesLeaveTheKeyCache() async throws {
        let directory = TemporaryDirectory("key-cache")
        let store = try await SignalingStore.open(directory: directory.path, logger: Logger(label: "test"))
        let old = Identity.generate().publicKeyBase64
        let new = Identity.generate().publicKeyBase64
        #expect(try await store.bind(name: "alice", key: old) == old)
        #expect(try await store.key(of: "alice") == old)
        #expect(try await store.key(of: "alice") == old)  // from the cache
        try await store.prune(olderThan: 0, now: Date().addingTimeInterval(store.limits.nameExpiry + 60))
        #expect(try await store.key(of: "alice") == nil)
        #expect(try await store.bind(name: "alice", key: new) == new)
        #expect(try await store.key(of: "alice") == new)
        await store.close()
    }

    /// Writes that come one at a time, each soon after the last, share commits: a commit begins
    /// at most every `commitSpacing` (1 ms). Without the pacing each write found the writer idle
    /// and took a commit of its own (on tmpfs, where fsync costs nothing, as the bench's memory
    /// store). On a loaded machine writes only bunch up more, so the bound holds however slow
    /// the machine is.
    @Test func writesThatTrickleInShareCommits() async throws {
        let directory = TemporaryDirectory("paced-commit", in: "/dev/shm")
        let store = try await SignalingStore.open(directory: directory.path, logger: Logger(label: "test"))
        let writes = 100
        let before = store.commitCount
        // Answers given, and those that were not a success: every answer counts, so a failed
        // write ends the wait as well and is reported, not left to the time limit.
        let answered = Mutex((count: 0, failed: 0))
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            for n in 0..<writes {
                store.enqueueChat(sender: "alice", id: "t\(n)", recipients: ["bob"], frame: "{}") { result in
                    let count = answered.withLock { answered in
                        answered.count += 1
                        if case .failure = result { answered.failed += 1 }
                        return answered.count
                    }
                    if count == writes { done.resume() }
                }
                // 300 µs apart: three or four writes per spacing.
                usleep(300)
            }
        }
        #expect(answered.withLock { $0.failed } == 0)
        let commits = store.commitCount - before
        #expect(commits <= writes / 2, "\(commits) commits for \(writes) writes 300 µs apart")
        #expect(try await store.pending(for: "bob").count == writes)
        await store.close()
    }
}
