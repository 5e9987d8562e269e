import Foundation
import Logging
import NIOCore
import STUN
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Watches this host's addresses, links and default routes through a Linux rtnetlink socket
/// (`AF_NETLINK`, `NETLINK_ROUTE`, RFC 3549) and reports each burst of changes as one
/// ``NetworkChange`` on ``changes``: a phone that moves from Wi-Fi to mobile data learns it the
/// moment the kernel does, instead of after seconds of silence on its call.
///
/// The socket is read by one small dedicated thread that blocks in `poll(2)` (at most 250 ms
/// at a time, so ``stop()`` is noticed), never by a NIO event loop or Swift's cooperative
/// pool. Only datagrams from the kernel (`nl_pid` 0) are taken: another process on the host
/// cannot fake a network change. Each datagram is parsed by ``NetlinkParser``; one that does
/// not parse, or an overflow of the socket's buffer (ENOBUFS), is reported as
/// ``NetworkChange/eventsLost``.
public final class NetworkMonitor: Sendable {
    /// One change per burst of events (``NetworkChangeBatch``); finishes after ``stop()``.
    public let changes: AsyncStream<NetworkChange>
    /// The socket's netlink port id (`nl_pid` after bind): the address another process would
    /// have to send to in order to fake an event, which the monitor refuses (it takes the
    /// kernel's only).
    public let portID: UInt32
    private let descriptor: Int32
    private let stopped = StopFlag()

    // <linux/rtnetlink.h>: RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR,
    // RTMGRP_IPV6_ROUTE. Routes too: an address often comes a few milliseconds before the default
    // route through it, and a path gathered in between finds no way out.
    static let groups: UInt32 = 0x1 | 0x10 | 0x40 | 0x100 | 0x400
    static let netlinkRoute: Int32 = 0

    /// Opens the socket and starts the reading thread.
    /// - Parameter quiet: how long after the last event of a burst its change is reported.
    public init(quiet: Duration = .milliseconds(200), longest: Duration = .seconds(1),
                logger: Logger = Logger(label: "meshnode.network")) throws(ICEError) {
        #if os(Linux)
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.netlinkRoute)
        guard fd >= 0 else { throw Self.unavailable("socket(AF_NETLINK)") }
        // struct sockaddr_nl: nl_family (16), nl_pad (16), nl_pid (32, 0: the kernel assigns
        // one), nl_groups (32), in host byte order.
        var address = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: UInt16(AF_NETLINK)) { address.replaceSubrange(0..<2, with: $0) }
        withUnsafeBytes(of: Self.groups) { address.replaceSubrange(8..<12, with: $0) }
        let bound = address.withUnsafeBytes { raw in
            bind(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        guard bound == 0 else {
            let error = Self.unavailable("bind(AF_NETLINK)")
            close(fd)
            throw error
        }
        var named = [UInt8](repeating: 0, count: 12)
        var namedLength = socklen_t(12)
        let gotName = named.withUnsafeMutableBytes { raw in
            getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &namedLength)
        }
        portID = gotName == 0 ? named.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) } : 0
        // A burst of a few hundred events (a VPN coming up with many routes) fits.
        var size: Int32 = 1 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        descriptor = fd
        let (stream, continuation) = AsyncStream.makeStream(of: NetworkChange.self, bufferingPolicy: .bufferingNewest(16))
        changes = stream
        let thread = Thread { [descriptor, stopped] in
            Self.read(descriptor: descriptor, stopped: stopped, batch: NetworkChangeBatch(quiet: quiet, longest: longest),
                      continuation: continuation, logger: logger)
        }
        thread.name = "meshnode-network"
        thread.start()
        #else
        throw ICEError(.networkMonitorUnavailable, "watching the network needs Linux's rtnetlink")
        #endif
    }

    /// Stops the thread (within 250 ms), closes the socket and finishes ``changes``.
    public func stop() {
        stopped.value.store(true, ordering: .releasing)
    }

    deinit {
        stop()
    }

    #if os(Linux)
    private static func read(descriptor: Int32, stopped: StopFlag, batch: NetworkChangeBatch,
                             continuation: AsyncStream<NetworkChange>.Continuation, logger: Logger) {
        var batch = batch
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        defer {
            close(descriptor)
            continuation.finish()
        }
        while !stopped.value.load(ordering: .acquiring) {
            var timeout = 250
            if let deadline = batch.deadline {
                let left = deadline - .now
                timeout = max(0, min(timeout, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000) + 1))
            }
            var pollDescriptor = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollDescriptor, 1, Int32(timeout))
            if ready > 0 {
                receive(descriptor: descriptor, into: &buffer, batch: &batch, logger: logger)
            } else if ready < 0, errno != EINTR {
                logger.warning("network monitor: poll failed (errno \(errno)); address changes are no longer seen")
                return
            }
            if let change = batch.take(at: .now) { continuation.yield(change) }
        }
    }

    /// Reads every datagram waiting, without blocking.
    private static func receive(descriptor: Int32, into buffer: inout [UInt8], batch: inout NetworkChangeBatch, logger: Logger) {
        for _ in 0..<64 {
            var sender = sockaddr_storage()
            var senderLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let count = buffer.withUnsafeMutableBytes { raw in
                withUnsafeMutablePointer(to: &sender) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(descriptor, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, &senderLength)
                    }
                }
            }
            if count < 0 {
                if errno == ENOBUFS { batch.lost(at: .now) }
                return // EAGAIN: nothing more now
            }
            // nl_pid at offset 4 of sockaddr_nl: 0 is the kernel; anything else is a process
            // on this host, which has no say about our addresses.
            let senderPID = withUnsafeBytes(of: &sender) { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
            guard senderPID == 0 else { continue }
            do {
                batch.add(try NetlinkParser.parse(ByteBuffer(bytes: buffer[0..<count])), at: .now)
            } catch {
                logger.warning("network monitor: \(error.reason)")
                batch.lost(at: .now)
            }
        }
    }
    #endif

    private static func unavailable(_ call: String) -> ICEError {
        ICEError(.networkMonitorUnavailable, "\(call) failed: \(String(cString: strerror(errno)))")
    }
}

/// The flag that tells the reading thread to stop; shared by the monitor and its thread, so
/// that the thread does not keep the monitor alive.
private final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// Which local address the kernel would send from toward a destination.
public enum RouteLookup {
    /// The source address a new connection to `destination` gets now, by the routing table
    /// (a UDP socket's `connect(2)` picks it and sends nothing); nil when there is no route.
    public static func sourceAddress(toward destination: IPAddress, port: Int = 9) -> IPAddress? {
        #if os(Linux)
        let target = destination.socketAddress(port: port)
        let fd = socket(destination.isIPv4 ? AF_INET : AF_INET6, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard target.withSockAddr({ connect(fd, $0, socklen_t($1)) }) == 0 else { return nil }
        var local = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &local) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        return withUnsafeBytes(of: &local) { raw -> IPAddress? in
            if destination.isIPv4 {
                return IPAddress(SocketAddress(raw.loadUnaligned(as: sockaddr_in.self)))
            }
            return IPAddress(SocketAddress(raw.loadUnaligned(as: sockaddr_in6.self)))
        }
        #else
        return nil
        #endif
    }
}
