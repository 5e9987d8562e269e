import NIOCore
import Synchronization
internal import CUDPShims
#if canImport(Glibc)
import Glibc
#endif

/// An address as the data path compares it: family, port and IP in plain integers, read
/// straight from a `sockaddr` (no formatting, no hashing). With port 0 it stands for an IP
/// (a permission, RFC 8656 §9).
struct PeerKey: Equatable {
    var family: UInt16 = 0
    var port: UInt16 = 0
    var high: UInt64 = 0
    var low: UInt64 = 0

    init(_ storage: UnsafePointer<sockaddr_storage>) {
        let raw = UnsafeRawPointer(storage)
        family = storage.pointee.ss_family
        switch Int32(family) {
        case AF_INET:
            port = raw.load(fromByteOffset: 2, as: UInt16.self)
            low = UInt64(raw.load(fromByteOffset: 4, as: UInt32.self))
        case AF_INET6:
            port = raw.load(fromByteOffset: 2, as: UInt16.self)
            high = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            low = raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        default:
            break
        }
    }

    init(_ address: SocketAddress) {
        var storage = sockaddr_storage()
        Self.fill(&storage, from: address)
        self = withUnsafePointer(to: &storage) { PeerKey($0) }
    }

    /// The same address without its port: the key of its IP's permission.
    var ip: PeerKey {
        var copy = self
        copy.port = 0
        return copy
    }

    /// Writes `address` into a `sockaddr_storage`; returns its length (0 for a Unix socket).
    @discardableResult
    static func fill(_ storage: inout sockaddr_storage, from address: SocketAddress) -> socklen_t {
        address.withSockAddr { pointer, length in
            guard length <= MemoryLayout<sockaddr_storage>.size else { return 0 }
            withUnsafeMutableBytes(of: &storage) { $0.baseAddress!.copyMemory(from: pointer, byteCount: length) }
            return socklen_t(length)
        }
    }
}

/// What the NIO loop tells the engine about one allocation's peers: its live channels and
/// permissions, each with the monotonic time (ns, `NIODeadline.uptimeNanoseconds`) until which
/// it may be used. A channel's time is the earlier of the binding's and its peer's
/// permission's expiry (RFC 8656 §12: data on a channel needs both).
///
/// Channels are kept as parallel arrays: the data path scans the small `numbers` or `peers`
/// array and touches the rest only for the channel it found.
struct RelayRoutes: Sendable {
    /// Grows with each update of the loop: an engine keeps the newest it was given.
    var version: UInt64 = 0
    var numbers: [UInt16] = []
    var peers: [PeerKey] = []
    var untils: [UInt64] = []
    /// The peers as `sockaddr`s, ready for `sendmsg`.
    var addresses: [sockaddr_storage] = []
    var addressLengths: [socklen_t] = []
    var permissions: [(ip: PeerKey, until: UInt64)] = []

    mutating func addChannel(number: UInt16, peer: SocketAddress, until: UInt64) {
        var storage = sockaddr_storage()
        addressLengths.append(PeerKey.fill(&storage, from: peer))
        addresses.append(storage)
        numbers.append(number)
        peers.append(PeerKey(peer))
        untils.append(until)
    }

    func permitted(_ ip: PeerKey, now: UInt64) -> Bool {
        for permission in permissions where permission.ip == ip { return permission.until > now }
        return false
    }
}

/// One allocation in a ``RelayEngine``: its two sockets, routes, bandwidth budgets and the
/// ways back to its NIO loop. Owned by the thread of the engine that ``owner`` names; it
/// changes hands only as ``RelayEngineGroup`` describes.
final class RelayPath: @unchecked Sendable {
    /// Hands a datagram the engine does not relay itself to the NIO loop, with its sender.
    typealias SlowPath = @Sendable (ByteBuffer, SocketAddress) -> Void

    let id: Int
    /// The engine of the allocation's loop, to which its commands are posted.
    let home: Int
    /// The engine that watches the sockets and may touch everything below.
    let owner: Atomic<Int>
    /// Its slot in the owner's table; -1 while no engine watches it.
    @exclusivity(unchecked) var slot = -1
    /// The allocation ended and the sockets are closed.
    @exclusivity(unchecked) var closed = false
    /// Connected to the client; bound to the address and port of the listener it reached.
    let clientSocket: Int32
    /// The relayed transport address (a duplicate of the NIO channel's descriptor).
    let relaySocket: Int32
    let client: PeerKey
    /// GSO segments stay within the smallest path MTU the kernel accepts (``DatagramOutbox``).
    let segmentLimit: Int
    // Touched only by the engine's thread: no runtime exclusivity checks on the data path.
    @exclusivity(unchecked) var routes = RelayRoutes()
    @exclusivity(unchecked) var toPeerBudget: TokenBucket?
    @exclusivity(unchecked) var toClientBudget: TokenBucket?
    /// A datagram from the client that is not ChannelData on a live channel.
    let fromClient: SlowPath
    /// A datagram from a permitted peer without a live channel (a Data indication, RFC 8656 §11.3).
    let fromPeer: SlowPath

    init(id: Int, home: Int, clientSocket: Int32, relaySocket: Int32, client: SocketAddress, relay: SocketAddress, bitsPerSecond: Int?,
         fromClient: @escaping SlowPath, fromPeer: @escaping SlowPath) {
        self.id = id
        self.home = home
        owner = Atomic(home)
        self.clientSocket = clientSocket
        self.relaySocket = relaySocket
        self.client = PeerKey(client)
        if case .v6 = client, case .v6 = relay {
            segmentLimit = DatagramOutbox.maximumSegmentSizeIPv6
        } else {
            segmentLimit = DatagramOutbox.maximumSegmentSizeIPv4
        }
        toPeerBudget = bitsPerSecond.map { TokenBucket(bitsPerSecond: $0) }
        toClientBudget = bitsPerSecond.map { TokenBucket(bitsPerSecond: $0) }
        self.fromClient = fromClient
        self.fromPeer = fromPeer
    }

    func closeSockets() {
        close(clientSocket)
        close(relaySocket)
    }
}
