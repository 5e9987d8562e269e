import DTLSSRTP
import Foundation
@testable import MeshNode
import NIOCore
import Synchronization
import Testing
import TestSupport

/// The call's forwarding thread (``ForwardingThread``): packets in the order they were queued,
/// a backlog taken as one batch, a bound whose drops are counted per participant, and an end.
@Suite("Forwarding thread: batches, bound, end", .serialized, .timeLimit(.minutes(1)))
struct ForwardingThreadTests {
    final class Seen: Sendable {
        let batches = Mutex<[[String]]>([])
        let threads = Mutex<Set<String>>([])
        let gate = Atomic(true)
        var all: [String] { batches.withLock { $0.flatMap { $0 } } }
    }

    static func packet(_ label: String, from participant: String = "alice") -> ForwardingThread.Packet {
        .init(event: .rtcp(ByteBuffer(string: label), arrival: .now), parsed: nil, participant: participant, arrival: .now)
    }

    static func label(_ packet: ForwardingThread.Packet) -> String {
        if case .rtcp(let bytes, _) = packet.event { String(buffer: bytes) } else { "?" }
    }

    /// The calling thread's name as the OS has it.
    static func threadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func started(_ seen: Seen) -> ForwardingThread {
        let thread = ForwardingThread()
        thread.start(name: "meshnode-fwd") { batch in
            while !seen.gate.load(ordering: .sequentiallyConsistent) { usleep(1_000) }
            seen.batches.withLock { $0.append(batch.map(Self.label)) }
            seen.threads.withLock { _ = $0.insert(Self.threadName()) }
        }
        return thread
    }

    @Test("each packet once, in order, on the named thread; what queued while it was busy comes as one batch")
    func ordersAndBatches() async throws {
        let seen = Seen()
        let thread = started(seen)
        defer { thread.close() }
        #expect(thread.enqueue(Self.packet("first")))
        try await waitUntil("the first forwarded") { seen.all == ["first"] }
        // Busy: the next batch's forward waits on the gate while 50 more queue behind it.
        seen.gate.store(false, ordering: .sequentiallyConsistent)
        thread.enqueue(Self.packet("busy"))
        try await Task.sleep(for: .milliseconds(50))
        for index in 0..<50 { thread.enqueue(Self.packet("p\(index)")) }
        seen.gate.store(true, ordering: .sequentiallyConsistent)
        try await waitUntil("all 52 forwarded") { seen.all.count == 52 }
        #expect(seen.all == ["first", "busy"] + (0..<50).map { "p\($0)" })
        let batches = seen.batches.withLock { $0 }
        #expect(batches.count == 3 && batches[2].count == 50, "the backlog came as one batch: \(batches.map(\.count))")
        #expect(seen.threads.withLock { $0 } == ["meshnode-fwd"])
    }

    @Test("past the bound a packet is dropped and counted against its participant; a leaver's count is forgotten")
    func boundedAndCounted() async throws {
        let seen = Seen()
        seen.gate.store(false, ordering: .sequentiallyConsistent)
        let thread = started(seen)
        defer { thread.close() }
        // The first is taken and held in the forward; then the queue fills to its bound.
        thread.enqueue(Self.packet("held"))
        try await Task.sleep(for: .milliseconds(50))
        var accepted = 0
        for index in 0..<(ForwardingThread.bound + 10) where thread.enqueue(Self.packet("q\(index)", from: index % 2 == 0 ? "bob" : "carol")) {
            accepted += 1
        }
        #expect(accepted == ForwardingThread.bound)
        #expect(thread.dropped(of: "bob") + thread.dropped(of: "carol") == 10)
        #expect(thread.dropped(of: "alice") == 0)
        thread.forget("bob")
        #expect(thread.dropped(of: "bob") == 0)
        seen.gate.store(true, ordering: .sequentiallyConsistent)
        try await waitUntil("the backlog forwarded") { seen.all.count == 1 + ForwardingThread.bound }
    }

    @Test("closed, it forwards what was queued and then refuses")
    func closes() async throws {
        let seen = Seen()
        seen.gate.store(false, ordering: .sequentiallyConsistent)
        let thread = started(seen)
        thread.enqueue(Self.packet("a"))
        try await Task.sleep(for: .milliseconds(30))
        thread.enqueue(Self.packet("b"))
        thread.close()
        #expect(!thread.enqueue(Self.packet("late")))
        seen.gate.store(true, ordering: .sequentiallyConsistent)
        try await waitUntil("what was queued forwarded") { seen.all == ["a", "b"] }
        try await Task.sleep(for: .milliseconds(30))
        #expect(seen.all == ["a", "b"])
    }
}
