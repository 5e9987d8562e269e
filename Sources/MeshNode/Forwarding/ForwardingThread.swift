import DTLSSRTP
import Foundation
import RTP

/// The thread that forwards one call's packets: the GLib thread that read a participant's
/// datagram decrypts it and makes the uplink's transport-cc feedback (``UplinkStamper``), then
/// queues it here and reads on; this thread takes every packet queued since it last looked
/// and forwards them under the call's lock, one batch per lock (docs/rooms.md "Cost per packet").
///
/// Two stages, not one: when forwarding falls behind (a debug build, or a machine short of CPU),
/// the backlog waits here, after the feedback was made, and not in the socket ahead of it —
/// late feedback counts as data in flight for the sender, which then cuts its rate to its floor.
/// A thread, not a task: it sleeps on a condition and is woken once per batch, with no
/// allocation per packet.
final class ForwardingThread: @unchecked Sendable {
    struct Packet {
        let event: TransportEvent
        let parsed: RTPPacket?
        let participant: String
        let arrival: ContinuousClock.Instant
    }

    /// The most packets waiting: about a second of a full call's uplinks on a slow machine.
    /// Past it a packet is dropped, as a full socket buffer drops it, and counted.
    static let bound = 4096

    // Guarded by `condition`'s lock.
    private let condition = NSCondition()
    private var queued: [Packet] = []
    private var sleeping = false
    private var closed = false
    private var drops: [String: Int] = [:]

    init() {
        queued.reserveCapacity(256)
    }

    /// Starts the thread; `forward` runs on it with each batch, in the order the packets came.
    /// Packets queued before are kept for it.
    func start(name: String, forward: @escaping @Sendable ([Packet]) -> Void) {
        let thread = Thread { [self] in
            // The OS's name (top, perf): Foundation's `Thread.name` does not set it on Linux,
            // and Glibc does not show pthread_setname_np to Swift.
            try? name.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            run(forward)
        }
        thread.name = name
        thread.start()
    }

    /// Queues `packet`; false (and counted against its participant) when ``bound`` are waiting
    /// or the thread ended.
    @discardableResult
    func enqueue(_ packet: Packet) -> Bool {
        condition.lock()
        guard !closed, queued.count < Self.bound else {
            drops[packet.participant, default: 0] += 1
            condition.unlock()
            return false
        }
        queued.append(packet)
        let wake = sleeping
        condition.unlock()
        if wake { condition.signal() }
        return true
    }

    /// Packets of `participant` dropped so far.
    func dropped(of participant: String) -> Int {
        condition.lock()
        defer { condition.unlock() }
        return drops[participant] ?? 0
    }

    /// Forgets `participant`'s drop count (it left).
    func forget(_ participant: String) {
        condition.lock()
        drops[participant] = nil
        condition.unlock()
    }

    /// Ends the thread once it has forwarded what is queued; later packets are dropped.
    func close() {
        condition.lock()
        closed = true
        condition.unlock()
        condition.broadcast()
    }

    private func run(_ forward: @Sendable ([Packet]) -> Void) {
        var batch: [Packet] = []
        batch.reserveCapacity(256)
        while true {
            condition.lock()
            while queued.isEmpty && !closed {
                sleeping = true
                condition.wait()
                sleeping = false
            }
            if queued.isEmpty {
                condition.unlock()
                return
            }
            swap(&batch, &queued)
            condition.unlock()
            forward(batch)
            batch.removeAll(keepingCapacity: true)
        }
    }
}
