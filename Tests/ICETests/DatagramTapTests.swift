import Foundation
import ICE
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
