import Foundation
@testable import ICE
import NIOCore
import Synchronization
import Testing
import TestSupport

/// A consumer whose work per datagram is short (the forwarder) takes an agent's datagrams on the
/// GLib thread as they come off the socket (`ICEAgent.deliverDatagrams(to:)`), so that no thread
/// is woken per packet (docs/rooms.md "Cost per packet"); the agent's other events still come
/// through its stream, and without the tap datagrams do too.
@Suite("ICE agent: datagrams tapped on the GLib thread", .serialized, .timeLimit(.minutes(1)))
struct DatagramTapTests {
    final class Tapped: Sendable {
        let payloads = Mutex<[String]>([])
        let threads = Mutex<Set<String>>([])
    }

    /// The name of the calling thread (Linux's `/proc/thread-self/comm`).
    static func threadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("with a tap, every datagram reaches it on the GLib thread and none is queued; without it they come through the stream again")
    func tappedThenQueued() async throws {
        try await tapped(on: .shared, thread: "meshnode-glib")
    }

    @Test("an agent on a pooled loop works the same, on that loop's thread; a key always takes the same loop")
    func pooledLoop() async throws {
        #expect(ICEEventLoop.poolSize == max(1, min(8, ProcessInfo.processInfo.activeProcessorCount)))
        // Which loop a key takes: the thread the tap runs on names it.
        let first = try await tapped(on: .pooled(by: "rc-one"), thread: nil)
        let again = try await tapped(on: .pooled(by: "rc-one"), thread: nil)
        #expect(first.hasPrefix("meshnode-glib-") && first == again, "\(first), then \(again)")
        // Over many keys every loop of the pool takes some.
        var threads = Set<String>()
        for index in 0..<4 * ICEEventLoop.poolSize where threads.count < ICEEventLoop.poolSize {
            threads.insert(try await tapped(on: .pooled(by: "rc-\(index)"), thread: nil))
        }
        #expect(threads.count == ICEEventLoop.poolSize, "\(threads)")
    }

    @Test("a GLib thread busy for 400 ms still dates each datagram as the kernel received it, not when it read it")
    func kernelArrivalStamps() async throws {
        // A loop of B's own, so that blocking it holds up no other test's agents.
        let loop = ICEEventLoop.pooled(by: "kernel-stamps")
        let (probeA, probeB, _) = try await connect(.loopback(), loopB: loop)
        defer { probeA.stop(); probeB.stop() }
        try await deliver("warm", from: probeA, to: probeB)
        let stamps = Mutex<[(arrival: ContinuousClock.Instant, read: ContinuousClock.Instant)]>([])
        probeB.agent.deliverDatagrams(to: ICEDatagramTap { _, arrival in
            stamps.withLock { $0.append((arrival, .now)) }
        })
        let hold: Duration = .milliseconds(400)
        let blocked = ContinuousClock.now
        loop.glib.invoke { Thread.sleep(forTimeInterval: 0.4) }
        try await Task.sleep(for: .milliseconds(20))
        var sent: [ContinuousClock.Instant] = []
        let count = 15
        for index in 0..<count {
            if index > 0 { try await Task.sleep(for: .milliseconds(20)) }
            sent.append(.now)
            try probeA.agent.send(Array("stamped \(index)".utf8))
        }
        try await waitUntil("the tap to see \(count) datagrams") { stamps.withLock { $0.count } >= count }
        let times = stamps.withLock { Array($0.prefix(count)) }
        probeB.agent.deliverDatagrams(to: nil)
        await probeA.agent.close()
        await probeB.agent.close()

        let offsets = (0..<count).map { ((times[$0].arrival - times[0].arrival) - (sent[$0] - sent[0])) / .milliseconds(1) }
        let reads = (0..<count).map { (times[$0].read - times[0].read) / .milliseconds(1) }
        print("kernel stamp minus send, ms: \(offsets.map { Int($0.rounded()) }); read times from the first, ms: \(reads.map { Int($0.rounded()) })")
        // The thread was held: the first datagrams were read when it woke, in a burst (the
        // test's own check that the delay it defends against was there).
        #expect(times[0].read - blocked >= hold - .milliseconds(50), "the GLib thread was busy: first read \(times[0].read - blocked) after the block")
        let firstHeld = (0..<count).filter { sent[$0] < blocked + hold - .milliseconds(60) }
        #expect(firstHeld.count >= 5, "datagrams were sent while the thread was held: \(firstHeld.count)")
        if let lastHeld = firstHeld.last {
            #expect(times[lastHeld].read - times[0].read < .milliseconds(30), "those were read in one burst: \(reads)")
        }
        // Their stamps follow the sends all the same, and the first is from its send, not its read.
        #expect((offsets.map(abs).max() ?? 99) <= 10, "the stamps follow the sends: \(offsets)")
        #expect(times[0].arrival - sent[0] < .milliseconds(30), "stamped by the kernel: \(times[0].arrival - sent[0]) after the send")
    }

    /// Connects A to B on `loop`, taps B's datagrams, checks them, and returns the tap's thread.
    @discardableResult
    func tapped(on loop: ICEEventLoop, thread expected: String?) async throws -> String {
        let (probeA, probeB, _) = try await connect(.loopback(), loopB: loop)
        defer { probeA.stop(); probeB.stop() }
        try await deliver("warm", from: probeA, to: probeB)
        let tapped = Tapped()
        probeB.agent.deliverDatagrams(to: ICEDatagramTap { datagram, arrival in
            tapped.payloads.withLock { $0.append(String(buffer: datagram)) }
            tapped.threads.withLock { _ = $0.insert(Self.threadName()) }
            #expect(arrival <= .now)
        })
        let queuedBefore = probeB.snapshot.received.count
        for index in 0..<20 { try probeA.agent.send(Array("tapped \(index)".utf8)) }
        try await waitUntil("the tap to see 20 datagrams") { tapped.payloads.withLock { $0.count } >= 20 }
        #expect(tapped.payloads.withLock { $0 } == (0..<20).map { "tapped \($0)" }, "in order, each once")
        let threads = tapped.threads.withLock { $0 }
        #expect(threads.count == 1, "called on one thread: \(threads)")
        if let expected { #expect(threads == [expected], "called on the loop's thread") }
        #expect(probeB.snapshot.received.count == queuedBefore, "a tapped datagram is not also queued")

        probeB.agent.deliverDatagrams(to: nil)
        try await deliver("queued again", from: probeA, to: probeB)
        #expect(tapped.payloads.withLock { $0.count } == 20, "the tap is gone")
        await probeA.agent.close()
        await probeB.agent.close()
        return threads.first ?? "?"
    }
}
