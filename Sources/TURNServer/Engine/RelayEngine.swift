import Foundation
import Logging
import NIOCore
import Synchronization
internal import CUDPShims

/// The data path of UDP allocations whose client speaks UDP: one thread per event loop that
/// relays ChannelData between the client and the channel's peers with batched system calls
/// on sockets it owns, outside SwiftNIO's per-datagram pipeline.
///
/// Per allocation it reads two sockets:
/// - the **client socket**: bound to the listener's address and port (SO_REUSEPORT) and
///   connected to the client, so the kernel hands it that client's datagrams and no other
///   (Linux prefers a connected socket over the listener's reuseport group). The socket itself
///   says which allocation a datagram belongs to: no address is hashed or compared.
/// - the **relay socket**, the allocation's relayed transport address, shared with a NIO
///   channel that never reads (it sends the Send indications of the request path).
///
/// ChannelData from the client on a live channel goes to the channel's peer, and datagrams
/// from a channel's peer go to the client as ChannelData (RFC 8656 §12.4), both in batches:
/// `recvmmsg` reads up to ``batch`` datagrams at once, and the datagrams of a batch that go to
/// one destination leave in one UDP GSO write (or one `sendmmsg`), straight from the receive
/// buffer: the ChannelData header is written into headroom in front of the payload.
/// Everything else — STUN requests, Send indications, peers without a channel, channels not
/// (or no longer) valid — goes to the allocation's ``TURNLoop`` on the NIO event loop, which
/// applies every rule as before (RFC 8656 §9, §11, §12). The loop publishes each allocation's
/// channels and permissions with their expiry (``RelayRoutes``); the engine checks the expiry
/// per batch, so a lapsed channel or permission stops relaying without a timer.
///
/// `@unchecked Sendable`: the engine owns file descriptors and raw buffers. Everything but
/// ``inbox`` and ``slowPathInFlight`` is touched only by its own thread; other threads talk
/// to it through the inbox and an eventfd.
final class RelayEngine: @unchecked Sendable {
    /// Datagrams read per `recvmmsg`.
    static let batch = 32
    /// Bytes per datagram slot; the payload starts after ``headroom`` bytes.
    static let slotSize = TURNServer.maximumDatagram + headroom
    /// Room for a ChannelData header (RFC 8656 §12.4) in front of a peer's payload.
    static let headroom = 4
    /// The kernel's `UDP_MAX_SEGMENTS` is 64 before Linux 6.x (128 after); see also
    /// ``DatagramOutbox`` for the segment size bounds.
    static let maximumSegments = 64
    /// Datagrams handed to the NIO loop and not yet handled there: a client or peer that
    /// floods the slow path (requests, unbound channels, strangers at the relay port) fills
    /// this and is dropped here instead of growing the loop's task queue without bound.
    static let slowPathLimit = 4_096

    enum Command {
        case open(RelayPath)
        case routes(id: Int, RelayRoutes)
        case close(id: Int)
        case stop
    }

    let logger: Logger
    private let metrics: TURNMetrics
    private let inbox = Mutex<[Command]>([])
    let slowPathInFlight = Atomic<Int>(0)
    private let epoll: Int32
    private let wake: Int32
    /// Whether batches to one destination leave as one segmented write.
    @exclusivity(unchecked) var gso: Bool

    // Thread-confined state.
    /// Paths by slot; a slot's generation tells a stale epoll token from a live one.
    var paths: [RelayPath?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []
    private var slotByID: [Int: Int] = [:]
    @exclusivity(unchecked) var tally = RelayTally()
    /// Slow-path datagrams dropped because ``slowPathLimit`` was reached.
    var slowPathDropped = 0
    private var lastFlush: UInt64 = 0
    private var running = true
    /// Receive slots (``batch`` × ``slotSize`` bytes) and their descriptors.
    let buffers: UnsafeMutableRawPointer
    let datagrams: UnsafeMutablePointer<CUDPShims_datagram>
    /// The send batch being built: iovecs into the receive slots.
    let vectors: UnsafeMutablePointer<iovec>
    private let tokens: UnsafeMutablePointer<UInt64>

    /// Opens the engine's epoll and eventfd; nil where the system has neither (not Linux).
    init?(logger: Logger, metrics: TURNMetrics, gso: Bool) {
        let epoll = CUDPShims_epoll_create()
        guard epoll >= 0 else { return nil }
        let wake = CUDPShims_eventfd()
        guard wake >= 0 else {
            close(epoll)
            return nil
        }
        guard CUDPShims_epoll_add(epoll, wake, UInt64.max) == 0 else {
            close(epoll)
            close(wake)
            return nil
        }
        self.epoll = epoll
        self.wake = wake
        self.logger = logger
        self.metrics = metrics
        self.gso = gso
        buffers = UnsafeMutableRawPointer.allocate(byteCount: Self.batch * Self.slotSize, alignment: 64)
        datagrams = UnsafeMutablePointer<CUDPShims_datagram>.allocate(capacity: Self.batch)
        vectors = UnsafeMutablePointer<iovec>.allocate(capacity: Self.maximumSegments)
        tokens = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
        for i in 0..<Self.batch {
            var datagram = CUDPShims_datagram()
            datagram.iov = iovec(iov_base: buffers + i * Self.slotSize + Self.headroom, iov_len: Self.slotSize - Self.headroom)
            (datagrams + i).initialize(to: datagram)
        }
    }

    deinit {
        close(epoll)
        close(wake)
        buffers.deallocate()
        datagrams.deallocate()
        vectors.deallocate()
        tokens.deallocate()
    }

    /// Starts the engine's thread.
    func start(name: String) {
        let thread = Thread { [self] in
            // Foundation names the thread only for itself; the kernel's name is what perf and
            // `ps -L` show (otherwise the creating NIO thread's name).
            CUDPShims_thread_set_name(name)
            adoptProcessNiceness(logger: logger, thread: name)
            run()
        }
        thread.name = name
        thread.start()
    }

    /// Hands a command to the engine's thread (from any thread).
    func post(_ command: Command) {
        inbox.withLock { $0.append(command) }
        CUDPShims_eventfd_signal(wake)
    }

    // MARK: The loop

    private func run() {
        while running {
            let ready = Int(CUDPShims_epoll_wait(epoll, tokens, 64, 1_000))
            let now = CUDPShims_monotonic_nanoseconds()
            if ready > 0 {
                for i in 0..<ready {
                    let token = tokens[i]
                    if token == UInt64.max {
                        CUDPShims_eventfd_drain(wake)
                        applyCommands()
                        continue
                    }
                    let slot = Int(token & 0xFFFF_FFFF) >> 1
                    guard slot < paths.count, generations[slot] == UInt32(token >> 32), let path = paths[slot] else { continue }
                    if token & 1 == 0 {
                        readClient(path, now: now)
                    } else {
                        readRelay(path, now: now)
                    }
                }
            }
            // Counters reach the metrics once a second, so the data path touches no shared memory.
            if now &- lastFlush > 1_000_000_000 {
                lastFlush = now
                tally.flush(into: metrics)
            }
        }
        for case let path? in paths { path.closeSockets() }
        paths = []
    }

    private func applyCommands() {
        let commands = inbox.withLock { inbox in
            defer { inbox.removeAll(keepingCapacity: true) }
            return inbox
        }
        for command in commands {
            switch command {
            case .open(let path):
                register(path)
            case .routes(let id, let routes):
                if let slot = slotByID[id] { paths[slot]?.routes = routes }
            case .close(let id):
                guard let slot = slotByID.removeValue(forKey: id), let path = paths[slot] else { continue }
                CUDPShims_epoll_remove(epoll, path.clientSocket)
                CUDPShims_epoll_remove(epoll, path.relaySocket)
                path.closeSockets()
                paths[slot] = nil
                generations[slot] &+= 1
                freeSlots.append(slot)
            case .stop:
                running = false
            }
        }
    }

    private func register(_ path: RelayPath) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = paths.count
            paths.append(nil)
            generations.append(0)
        }
        let base = UInt64(generations[slot]) << 32 | UInt64(slot << 1)
        guard CUDPShims_epoll_add(epoll, path.clientSocket, base) == 0,
              CUDPShims_epoll_add(epoll, path.relaySocket, base | 1) == 0 else {
            logger.warning("relay engine cannot watch an allocation's sockets", metadata: ["error": "\(errno)"])
            CUDPShims_epoll_remove(epoll, path.clientSocket)
            path.closeSockets()
            freeSlots.append(slot)
            return
        }
        paths[slot] = path
        slotByID[path.id] = slot
    }

    // MARK: Slow path

    /// Hands a copy of a datagram to the NIO loop, unless ``slowPathLimit`` datagrams wait there.
    func forward(_ bytes: UnsafeRawBufferPointer, from source: UnsafePointer<sockaddr_storage>, to handler: RelayPath.SlowPath) {
        guard slowPathInFlight.add(1, ordering: .relaxed).newValue <= Self.slowPathLimit else {
            slowPathInFlight.subtract(1, ordering: .relaxed)
            slowPathDropped += 1
            return
        }
        guard let address = Self.socketAddress(source) else {
            slowPathInFlight.subtract(1, ordering: .relaxed)
            return
        }
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        handler(buffer, address)
    }

    /// The datagram's sender, as the receive filled it in.
    @inline(__always)
    func source(of datagram: UnsafeMutablePointer<CUDPShims_datagram>) -> UnsafeMutablePointer<sockaddr_storage> {
        UnsafeMutableRawPointer(datagram).advanced(by: MemoryLayout<CUDPShims_datagram>.offset(of: \.address)!)
            .assumingMemoryBound(to: sockaddr_storage.self)
    }

    static func socketAddress(_ storage: UnsafePointer<sockaddr_storage>) -> SocketAddress? {
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee) }
        case AF_INET6:
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee) }
        default:
            return nil
        }
    }
}
