import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
@testable import Signaling

/// Holds the store writer's thread until `release()`: the writes behind it stay queued.
private final class WriterGate: Sendable {
    private let started = Atomic<Bool>(false)
    private let gate = DispatchSemaphore(value: 0)

    init(_ store: SignalingStore) async throws {
        store.writer.submit({ [self] _ throws(SignalingError) in
            started.store(true, ordering: .sequentiallyConsistent)
            gate.wait()
        }, then: { _ in })
        try await waitFor("the writer to take the gate") { started.load(ordering: .sequentiallyConsistent) ? true : nil }
    }

    func release() { gate.signal() }
}

/// What concurrent tasks of a test record.
private final class Record<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func append(_ item: T) { items.withLock { $0.append(item) } }
    var all: [T] { items.withLock { $0 } }
}

/// The store writer's bounded queue (issue 17): clients that send chat faster than the disk
/// commits get `store-busy` with a reason at once, instead of a backlog that grows for seconds and
/// delays everyone's messages; what was queued is still stored and acknowledged.
@Suite struct StoreBusyTests {
    /// The attacker: ten connections each send a chat while the writer is held and its queue
    /// takes four. Six get `store-busy` (with the reason) without waiting; the four queued ones are
    /// acknowledged and delivered once the writer goes on; nothing refused is stored.
    @Test func floodingTheWriterIsAnsweredBusy() async throws {
        var limits = StoreLimits()
        limits.writeQueue = 4
        let fixture = try await HubFixture(limits: limits)
        let bob = try await fixture.loggedIn("bob")[0].peer
        var senders: [TestPeer] = []
        for n in 0..<10 { senders.append(try await fixture.loggedIn("s\(n)")[0].peer) }

        let gate = try await WriterGate(fixture.store)
        let returned = Record<Int>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, sender) in senders.enumerated() {
                group.addTask {
                    await sender.send(.chat(ChatBody(text: "hello \(n)")), to: "bob", id: "m\(n)")
                    returned.append(n)
                }
            }
            // A refused chat is answered at once; a queued one only after its commit.
            let refused = try await waitFor("six refusals") { () -> [Int]? in
                let done = returned.all
                return done.count >= 6 ? done : nil
            }
            #expect(refused.count == 6)
            for n in refused {
                let error = try await senders[n].error()
                #expect(error.code == .storeBusy)
                #expect(error.of == "m\(n)")
                #expect(error.reason.contains("4 writes waiting"))
            }
            gate.release()
            try await group.waitForAll()
            let queued = Set(0..<10).subtracting(refused)
            for n in queued {
                let ack = try await senders[n].ack()
                #expect(ack.of == "m\(n)" && ack.status == .ok)
            }
            var delivered = Set<String>()
            for _ in queued {
                let message = try await bob.next { $0.type == .chat ? $0 : nil }
                delivered.insert(message.id)
            }
            #expect(delivered == Set(queued.map { "m\($0)" }))
        }
        #expect(try await fixture.store.pending(for: "bob").count == 4)
        await fixture.close()
    }

    /// Durable before the ack (docs/protocol.md "Delivery guarantees"): while the writer holds
    /// a chat, its sender gets no ack (a ping sent after it is answered first) and the recipient
    /// nothing; once the ack comes, the message is in the database as any other connection reads it.
    @Test func theAckComesOnlyAfterTheCommit() async throws {
        let fixture = try await HubFixture()
        let peers = try await fixture.loggedIn("alice", "bob")
        let (alice, bob) = (peers[0].peer, peers[1].peer)
        let gate = try await WriterGate(fixture.store)
        let sending = Task { await alice.send(.chat(ChatBody(text: "hi")), to: "bob", id: "m1") }
        try await waitFor("the chat to wait for the writer") { fixture.store.writer.queuedCount == 1 ? true : nil }
        await alice.send(.ping, id: "marker")
        try await alice.expectNext(id: "marker", "the pong before any ack")
        #expect(try await fixture.store.pending(for: "bob").isEmpty)
        gate.release()
        await sending.value
        let ack = try await alice.ack()
        #expect(ack.of == "m1" && ack.status == .ok)
        #expect(try await fixture.store.pending(for: "bob").map(\.id) == ["m1"])
        let delivered = try await bob.next { $0.type == .chat ? $0 : nil }
        #expect(delivered.id == "m1")
        await fixture.close()
    }

    /// The same bound on the store alone: a write beyond `writeQueue` is refused synchronously.
    @Test func aWriteBeyondTheQueueIsRefused() async throws {
        var limits = StoreLimits()
        limits.writeQueue = 2
        let directory = TemporaryDirectory("store-busy")
        let store = try await SignalingStore.open(directory: directory.path, limits: limits, logger: Logger(label: "test"))
        let gate = try await WriterGate(store)
        let answers = Record<Result<SignalingStore.Enqueued, SignalingError>>()
        for n in 0..<3 {
            store.enqueueChat(sender: "alice", id: "m\(n)", recipients: ["bob"], frame: "x") { result in
                answers.append(result)
            }
        }
        // The third was answered before `enqueueChat` returned; the first two wait for the gate.
        let early = answers.all
        #expect(early.count == 1)
        if case .failure(let error) = early.first { #expect(error.code == .storeBusy) } else { Issue.record("expected store-busy, got \(early)") }
        gate.release()
        try await waitFor("the two queued writes") { answers.all.count == 3 ? true : nil }
        #expect(try await store.pending(for: "bob").map(\.id) == ["m0", "m1"])
        await store.close()
    }
}
