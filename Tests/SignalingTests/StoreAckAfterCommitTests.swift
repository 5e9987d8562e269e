import Foundation
import Logging
import Testing
import TestSupport
@testable import Signaling

/// Messages are never acknowledged before they are durable (docs/protocol.md, issue 17): the
/// store's writer answers a batch of writes only after its `COMMIT`.
@Suite(.serialized) struct StoreAckAfterCommitTests {
    /// A write's answer comes after its commit: another connection sees the message when the
    /// sender is answered. Fails if the writer answered a batch before `COMMIT`.
    @Test func noWriteIsAnsweredBeforeItCommitted() async throws {
        let directory = TemporaryDirectory("ack-after-commit")
        let store = try await SignalingStore.open(directory: directory.path, logger: Logger(label: "test"))
        let observer = Observer(try StoreConnection(path: store.path))
        let writes = 2000
        await withTaskGroup(of: Void.self) { group in
            for n in 0..<writes {
                group.addTask {
                    let id = "m\(n)"
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        store.enqueueChat(sender: "alice", id: id, recipients: ["bob"], frame: "{\"n\":\(n)}") { result in
                            // Where the ack is sent: the message must be committed by now.
                            if case .success = result { observer.check(id) }
                            done.resume()
                        }
                    }
                }
            }
        }
        let unseen = observer.unseen
        #expect(unseen.count == 0, "\(unseen.count) of \(writes) answered before their commit, first \(unseen.prefix(3))")
        observer.close()
        await store.close()
    }
}

/// A connection of its own that looks for each answered message, and the ones it did not find.
private final class Observer: @unchecked Sendable {
    private let lock = NSLock()
    private let db: StoreConnection
    private var missing: [String] = []

    init(_ db: StoreConnection) { self.db = db }

    func check(_ id: String) {
        lock.withLock {
            var found = false
            try? db.each("SELECT 1 FROM messages WHERE sender = 'alice' AND id = ?", .text(id)) { _ in found = true }
            if !found { missing.append(id) }
        }
    }

    var unseen: [String] { lock.withLock { missing } }

    func close() { lock.withLock { db.close() } }
}
