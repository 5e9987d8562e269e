import NIOCore
import STUN

/// One TURN allocation (RFC 8656 §2): the relayed transport address, its permissions and
/// channel bindings. Lives on, and is touched only from, the event loop of its client.
final class Allocation {
    /// RFC 8656 §9: permissions last 300 s; §12: channel bindings 600 s, and a channel number
    /// or peer stays reserved for 300 s after its binding expires.
    static let permissionLifetime = TimeAmount.seconds(300)
    static let channelLifetime = TimeAmount.seconds(600)
    static let channelQuarantine = TimeAmount.seconds(300)

    struct ChannelBinding {
        var peer: SocketAddress
        var expiry: NIODeadline
    }

    let tuple: FiveTuple
    let username: String
    /// Whom the allocation counts against in the quota (``TURNShared/Credential/identity``).
    let identity: String
    let key: [UInt8]
    let client: ClientLink
    let relayAddress: SocketAddress
    let relayPort: Int
    /// RFC 6062: the relay is a TCP listener and data flows over separate connections.
    let isTCP: Bool
    let relayChannel: Channel
    let allocateTransactionID: STUNTransactionID
    var allocateResponse: ByteBuffer
    var expiry: NIODeadline
    var expiryTimer: Scheduled<Void>?
    var permissions: [IPAddress: NIODeadline] = [:]
    var channels: [UInt16: ChannelBinding] = [:]
    var channelByPeer: [SocketAddress: UInt16] = [:]
    /// The bandwidth cap, one budget per direction.
    var toPeerBudget: TokenBucket?
    var toClientBudget: TokenBucket?
    /// RFC 6062: peer connections by peer address, and their channels to close with the allocation.
    var peerConnections: [SocketAddress: UInt32] = [:]
    var peerChannels: [ObjectIdentifier: Channel] = [:]
    /// Connects under way (RFC 6062 §5.2), counted with ``peerChannels`` against the cap.
    var connecting = 0
    /// Its path in the loop's ``RelayEngine`` while the engines relay it.
    var enginePath: RelayPath?
    /// Relayed data towards peers, batched per event-loop turn (UDP relays only).
    var toPeer: DatagramOutbox?
    /// Relayed data towards a UDP client, batched per turn on the client's listener.
    var toClient: (outbox: DatagramOutbox, address: SocketAddress)?

    /// Where a peer's datagram goes (RFC 8656 §11.3): over a channel, in a Data indication, or
    /// nowhere without a permission.
    enum PeerRoute: Equatable {
        case refused
        case channel(UInt16)
        case indication
    }

    /// The last channel the client sent on and its peer, valid until the binding or the peer's
    /// permission may expire. A client sends to one or a few peers, so this answers almost
    /// every ChannelData without hashing; any change of permissions or channels clears it.
    private var hotChannel: (number: UInt16, peer: SocketAddress, until: NIODeadline)?
    /// The same for the last peer that sent to the relayed address.
    private var hotPeer: (peer: SocketAddress, route: PeerRoute, until: NIODeadline)?

    init(tuple: FiveTuple, username: String, identity: String, key: [UInt8], client: ClientLink, relayAddress: SocketAddress,
         relayPort: Int, isTCP: Bool, relayChannel: Channel, transactionID: STUNTransactionID, expiry: NIODeadline,
         bitsPerSecond: Int?) {
        self.tuple = tuple
        self.username = username
        self.identity = identity
        self.key = key
        self.client = client
        self.relayAddress = relayAddress
        self.relayPort = relayPort
        self.isTCP = isTCP
        self.relayChannel = relayChannel
        self.allocateTransactionID = transactionID
        self.allocateResponse = ByteBuffer()
        self.expiry = expiry
        self.toPeerBudget = bitsPerSecond.map { TokenBucket(bitsPerSecond: $0) }
        self.toClientBudget = bitsPerSecond.map { TokenBucket(bitsPerSecond: $0) }
    }

    func hasPermission(_ ip: IPAddress, now: NIODeadline) -> Bool {
        guard let until = permissions[ip] else { return false }
        return until > now
    }

    /// Permissions an allocation holds at once. The table is keyed by what the client asks
    /// for and the relay engine is sent all of it after each change: without a bound a client
    /// could grow both without end. A call needs a few peers (its ICE candidates' addresses).
    static let maximumPermissions = 128

    /// Whether permissions for `ips` fit under ``maximumPermissions``, after expired ones are
    /// dropped (RFC 8656 §9.2: a server that cannot install them answers 508).
    func hasRoom(for ips: [IPAddress], now: NIODeadline) -> Bool {
        let new = Set(ips.filter { permissions[$0] == nil })
        guard permissions.count + new.count > Self.maximumPermissions else { return true }
        permissions = permissions.filter { $0.value > now }
        return permissions.count + new.count <= Self.maximumPermissions
    }

    func installPermission(_ ip: IPAddress, now: NIODeadline) {
        permissions[ip] = now + Self.permissionLifetime
        forgetRoutes()
    }

    private func forgetRoutes() {
        hotChannel = nil
        hotPeer = nil
    }

    /// The peer ChannelData on `number` goes to: the channel must be live and its peer's IP
    /// must hold a permission (RFC 8656 §12.5: a channel binding also refreshes the permission,
    /// but a permission can lapse first when the binding is older).
    func relayPeer(forChannel number: UInt16, now: NIODeadline) -> SocketAddress? {
        if let hot = hotChannel, hot.number == number, now < hot.until { return hot.peer }
        guard let binding = channels[number], binding.expiry > now, let ip = IPAddress(binding.peer),
              let permitted = permissions[ip], permitted > now else { return nil }
        hotChannel = (number, binding.peer, min(binding.expiry, permitted))
        return binding.peer
    }

    /// How a datagram from `peer` reaches the client (RFC 8656 §11.3): dropped without a
    /// permission for the peer's IP, over the peer's live channel, or in a Data indication.
    func route(fromPeer peer: SocketAddress, now: NIODeadline) -> PeerRoute {
        if let hot = hotPeer, now < hot.until, hot.peer == peer { return hot.route }
        guard let ip = IPAddress(peer), let permitted = permissions[ip], permitted > now else { return .refused }
        if let number = channelByPeer[peer], let binding = channels[number], binding.expiry > now {
            hotPeer = (peer, .channel(number), min(binding.expiry, permitted))
            return .channel(number)
        }
        hotPeer = (peer, .indication, permitted)
        return .indication
    }

    /// The peer a live channel leads to.
    func peer(forChannel number: UInt16, now: NIODeadline) -> SocketAddress? {
        guard let binding = channels[number], binding.expiry > now else { return nil }
        return binding.peer
    }

    /// The live channel bound to a peer, if any.
    func channel(forPeer peer: SocketAddress, now: NIODeadline) -> UInt16? {
        guard let number = channelByPeer[peer], let binding = channels[number], binding.expiry > now else { return nil }
        return number
    }

    /// RFC 8656 §12.2: why a ChannelBind conflicts with existing or recently expired bindings.
    func bindConflict(channel number: UInt16, peer: SocketAddress, now: NIODeadline) -> String? {
        if let binding = channels[number], binding.peer != peer, binding.expiry + Self.channelQuarantine > now {
            return "channel 0x\(String(number, radix: 16)) is bound to another peer"
        }
        if let other = channelByPeer[peer], other != number, let binding = channels[other],
           binding.expiry + Self.channelQuarantine > now {
            return "peer \(peer) is bound to channel 0x\(String(other, radix: 16))"
        }
        return nil
    }

    func bind(channel number: UInt16, peer: SocketAddress, now: NIODeadline) {
        if let old = channels[number], old.peer != peer { channelByPeer[old.peer] = nil }
        if let oldNumber = channelByPeer[peer], oldNumber != number { channels[oldNumber] = nil }
        channels[number] = ChannelBinding(peer: peer, expiry: now + Self.channelLifetime)
        channelByPeer[peer] = number
        installPermission(IPAddress(peer)!, now: now)
        forgetRoutes()
    }

    /// Spends bandwidth budget of one direction; false when the packet must be dropped.
    func admit(_ bytes: Int, toPeer: Bool) -> Bool {
        if toPeer {
            guard toPeerBudget != nil else { return true }
            return toPeerBudget!.take(bytes)
        }
        guard toClientBudget != nil else { return true }
        return toClientBudget!.take(bytes)
    }
}
