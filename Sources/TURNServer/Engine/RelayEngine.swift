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
/// With several engines (``RelayEngineGroup``), allocations gather on the first engine while
/// the total rate is moderate and go back to their own engine when it grows.
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
        /// A new allocation, posted by its loop to its home engine.
        case open(RelayPath)
        /// The allocation's channels and permissions now, for the path's owner.
        case routes(RelayPath, RelayRoutes)
        /// The allocation ended: the path's owner closes its sockets.
        case close(RelayPath)
        /// A path another engine gave to this one (``RelayEngineGroup``); ``RelayPath/owner``
        /// already names this engine.
        case adopt(RelayPath)
        case stop
    }

    let logger: Logger
    private let metrics: TURNMetrics
    private let inbox = Mutex<[Command]>([])
    let slowPathInFlight = Atomic<Int>(0)
    private let epoll: Int32
    private let wake: Int32
    /// The server's engines, when allocations may move between them; nil: this engine alone.
    let group: RelayEngineGroup?
    /// This engine's number in ``group`` (0: the primary, where allocations gather).
    private(set) var index = 0
    /// Whether batches to one destination leave as one segmented write.
    @exclusivity(unchecked) var gso: Bool

    // Thread-confined state.
    /// Paths by slot; a slot's generation tells a stale epoll token from a live one.
    var paths: [RelayPath?] = []
    private var generations: [UInt32] = []
    private var freeSlots: [Int] = []
    /// Paths watched here whose home is another engine.
    private var foreign = 0
    /// Paths watched here.
    private var watched = 0
    /// Datagrams received since ``windowStart``: the rate that decides where paths go.
    @exclusivity(unchecked) var windowDatagrams = 0
    private var windowStart: UInt64 = 0
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
    init?(logger: Logger, metrics: TURNMetrics, gso: Bool, group: RelayEngineGroup? = nil) {
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
        self.group = group
        buffers = UnsafeMutableRawPointer.allocate(byteCount: Self.batch * Self.slotSize, alignment: 64)
        datagrams = UnsafeMutablePointer<CUDPShims_datagram>.allocate(capacity: Self.batch)
        vectors = UnsafeMutablePointer<iovec>.allocate(capacity: Self.maximumSegments)
        tokens = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
        for i in 0..<Self.batch {
            var datagram = CUDPShims_datagram()
            datagram.iov = iovec(iov_base: buffers + i * Self.slotSize + Self.headroom, iov_len: Self.slotSize - Self.headroom)
            (datagrams + i).initialize(to: datagram)
        }
        if let group { index = group.join(self) }
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

    /// Hands a command about `path` to the engine that owns the path now (this one or another of
    /// ``group``). Straight to the owner, not through the path's home: a close must reach the
    /// engine that reads the sockets before a peer's next datagram does, as with one engine (a
    /// detour through a sleeping engine let a deleted allocation relay one more datagram).
    func post(_ command: Command, about path: RelayPath) {
        let owner = path.owner.load(ordering: .acquiring)
        (owner == index ? self : group?.engine(owner) ?? self).post(command)
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
            if now &- windowStart >= RelayEngineGroup.window { balance(now: now) }
            // Counters reach the metrics once a second, so the data path touches no shared memory.
            if now &- lastFlush > 1_000_000_000 {
                lastFlush = now
                tally.flush(into: metrics)
                if group != nil { metrics.engineAllocations(index).record(watched) }
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
            case .open(let path), .adopt(let path):
                // Closed while it moved here: its sockets are gone already.
                if !path.closed { register(path) }
            case .routes(let path, let routes):
                // A route update that went round a move may arrive after a newer one.
                guard owns(path, else: command), !path.closed, routes.version >= path.routes.version else { continue }
                path.routes = routes
            case .close(let path):
                guard owns(path, else: command), !path.closed else { continue }
                unregister(path)
                path.closed = true
                path.closeSockets()
            case .stop:
                running = false
            }
        }
    }

    /// Whether `path` belongs to this engine; if not (it moved after the command was posted),
    /// `command` goes on to the engine it belongs to now.
    private func owns(_ path: RelayPath, else command: Command) -> Bool {
        let owner = path.owner.load(ordering: .acquiring)
        guard owner != index else { return true }
        group?.engine(owner)?.post(command)
        return false
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
            // Closed once: the allocation's later close finds it so.
            path.closed = true
            path.closeSockets()
            freeSlots.append(slot)
            return
        }
        paths[slot] = path
        path.slot = slot
        watched += 1
        if path.home != index { foreign += 1 }
    }

    /// Stops watching `path` (its sockets stay open).
    private func unregister(_ path: RelayPath) {
        let slot = path.slot
        guard slot >= 0, slot < paths.count, paths[slot] === path else { return }
        CUDPShims_epoll_remove(epoll, path.clientSocket)
        CUDPShims_epoll_remove(epoll, path.relaySocket)
        paths[slot] = nil
        generations[slot] &+= 1
        freeSlots.append(slot)
        path.slot = -1
        watched -= 1
        if path.home != index { foreign -= 1 }
    }

    // MARK: Where paths run (RelayEngineGroup)

    /// Once per window: measures this engine's rate; the primary sends paths home when it is
    /// busy, another engine gives its paths to the primary when all together are not.
    private func balance(now: UInt64) {
        let elapsed = now &- windowStart
        let rate = windowStart == 0 ? 0 : Int(UInt64(windowDatagrams) * 1_000_000_000 / max(elapsed, 1))
        windowDatagrams = 0
        windowStart = now
        guard let group, group.consolidateBelow > 0 else { return }
        let total = group.report(index, rate: rate)
        if index == 0 {
            guard foreign > 0, rate > group.spreadAbove else { return }
            group.lastSpread.store(now, ordering: .relaxed)
            var moved = 0
            for case let path? in paths where path.home != index {
                if move(path, to: path.home) { moved += 1 }
            }
            metrics.engineMovesHome.increment(by: moved)
            logger.debug("relay engine: allocations back to their own engines", metadata: ["moved": "\(moved)", "rate": "\(rate)"])
        } else {
            guard watched > 0, total < group.consolidateBelow,
                  now &- group.lastSpread.load(ordering: .relaxed) > RelayEngineGroup.holdAfterSpread else { return }
            var moved = 0
            for case let path? in paths {
                if move(path, to: 0) { moved += 1 }
            }
            metrics.engineMovesToPrimary.increment(by: moved)
        }
    }

    /// Gives `path` to engine `target`: unwatched here first, then ``RelayPath/owner`` is stored
    /// (release: everything this thread wrote to the path is visible to the taker), then posted.
    private func move(_ path: RelayPath, to target: Int) -> Bool {
        guard target != index, let engine = group?.engine(target) else { return false }
        unregister(path)
        path.owner.store(target, ordering: .releasing)
        engine.post(.adopt(path))
        return true
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
