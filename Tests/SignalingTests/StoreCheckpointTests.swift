import Foundation
import Logging
import Testing
import TestSupport
@testable import Signaling

/// The store's write-ahead log is checkpointed off the writer's commit path and stays bounded
/// (``StoreCheckpointer``, issue 17). That a write is answered only once it committed, now that
/// another thread answers, is StoreAckAfterCommitTests'.
@Suite(.serialized) struct StoreCheckpointTests {
    /// A frame of about 2 KiB: each message adds a page or more to the log.
    private static let frame = "{\"text\":\"" + String(repeating: "x", count: 2000) + "\"}"

    /// Chat messages and their acks, `rounds` times `batch` at once: the steady load of a node.
    private func chatLoad(_ store: SignalingStore, rounds: Int, batch: Int, prefix: String,
                          each: (() throws -> Void)? = nil) async throws {
        for round in 0..<rounds {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<batch {
                    group.addTask {
                        let id = "\(prefix)-\(round)-\(n)"
                        _ = try await store.enqueueChat(sender: "alice", id: id, recipients: ["bob"], frame: Self.frame)
                        try await store.markDelivered(recipient: "bob", sender: "alice", id: id)
                    }
                }
                try await group.waitForAll()
            }
            try each?()
        }
    }

    /// Without a checkpoint the log grows by every commit (the writer's own automatic one is
    /// off), and with PASSIVE ones only it grows too (the writer never finds it all copied);
    /// the checkpointer's restarts keep it to about `restartPages`.
    @Test func theLogStaysBoundedUnderASteadyWriteLoad() async throws {
        let directory = TemporaryDirectory("wal-steady")
        let store = try await SignalingStore.open(directory: directory.path, logger: Logger(label: "test"))
        let wal = store.path + "-wal"
        var largest = 0
        // 12,000 messages of 2 KiB and their acks: about 30 MiB through the log.
        try await chatLoad(store, rounds: 60, batch: 200, prefix: "m") {
            largest = max(largest, StoreCheckpointer.walSize(wal) ?? 0)
        }
        let counts = store.writer.checkpointer.counts
        #expect(counts.checkpoints > 0)
        // 2,000 pages of 4 KiB (`restartPages`), and the commits that came before it restarted
        // (about 100 MiB when nothing restarts it).
        #expect(largest < 32 << 20, "the log reached \(largest) bytes; \(counts)")
        await store.close()
    }

    /// A reader that holds a snapshot keeps checkpoints from finishing, so the log file grows;
    /// once it passes the cap and the reader let go, the writer's TRUNCATE checkpoint empties it.
    @Test func aLogPastItsCapIsTruncated() async throws {
        let directory = TemporaryDirectory("wal-cap")
        var limits = StoreLimits()
        limits.walBytes = 12 << 20
        let store = try await SignalingStore.open(directory: directory.path, limits: limits, logger: Logger(label: "test"))
        let wal = store.path + "-wal"
        try await chatLoad(store, rounds: 1, batch: 10, prefix: "first")

        let reader = try StoreConnection(path: store.path)
        try reader.run("BEGIN")
        try reader.run("SELECT count(*) FROM messages")
        try await chatLoad(store, rounds: 30, batch: 100, prefix: "held")
        let grown = StoreCheckpointer.walSize(wal) ?? 0
        #expect(grown > limits.walBytes, "the log grew to \(grown) bytes only")
        try reader.run("COMMIT")
        reader.close()

        // More writes: the writer's next checkpoint finds the file past the cap.
        try await chatLoad(store, rounds: 25, batch: 100, prefix: "after")
        let counts = store.writer.checkpointer.counts
        #expect(counts.truncations > 0, "\(counts)")
        // The file shrank (a restart alone reuses it from the start and keeps its size).
        let final = StoreCheckpointer.walSize(wal) ?? 0
        #expect(final < grown, "\(final) bytes after, \(grown) before; \(counts)")
        // Nothing was lost: every message of the load is stored and delivered.
        #expect(try await store.hasMessage(sender: "alice", id: "held-29-99"))
        #expect(try await store.usage().messages == 0)
        await store.close()
    }
}
