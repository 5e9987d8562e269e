import NIOCore
import NIOPosix
import STUN

/// TCP relaying (RFC 6062): Connect, incoming connections with ConnectionAttempt, and
/// ConnectionBind, which turns a new client connection into a raw pipe to one peer.
extension TURNLoop {
    /// RFC 6062 §5.3, §5.4: an unbound peer connection is closed after 30 s.
    static let connectionBindTimeout = TimeAmount.seconds(30)
    /// How long a Connect waits for the peer to accept before answering 447 (RFC 6062 §5.2
    /// leaves the time to the server).
    static let peerConnectTimeout = TimeAmount.seconds(10)
    /// Peer connections one TCP allocation may hold at once, waiting or bound. RFC 6062 sets no
    /// number; each is a file descriptor (a slot of the connection budget), and without a cap
    /// a peer with a permission could open one from every port and hold each for 30 s.
    static let maximumPeerConnections = 64

    /// Takes a budget slot for a new peer connection of `allocation`; the reason when its cap or
    /// the node's budget is reached. The slot goes back when the connection closes
    /// (``registerPending(_:peer:allocation:)``) or, for a Connect that fails, at once.
    private func admitPeerConnection(_ allocation: Allocation) -> String? {
        if allocation.peerChannels.count + allocation.connecting >= Self.maximumPeerConnections {
            return "the allocation holds its maximum of \(Self.maximumPeerConnections) peer connections"
        }
        guard shared.budget.acquire() else {
            return "the node holds its maximum of \(shared.budget.maximum) connections (max-connections)"
        }
        return nil
    }

    func handleConnect(_ reply: Reply, tuple: FiveTuple, username: String) {
        guard let allocation = ownedAllocation(reply, tuple: tuple, username: username) else { return }
        guard allocation.isTCP else {
            reply.send(reply.error(.badRequest, "Connect needs a TCP allocation (REQUESTED-TRANSPORT \(TURNTransportProtocol.tcp.rawValue))"))
            return
        }
        let peer: SocketAddress
        do {
            guard let p = try reply.request.xorAddress(.xorPeerAddress) else {
                reply.send(reply.error(.badRequest, "XOR-PEER-ADDRESS is missing"))
                return
            }
            peer = p
        } catch {
            reply.send(reply.error(.badRequest, error.reason))
            return
        }
        guard admitPeer(peer, allocation: allocation, reply: reply) != nil else { return }
        guard allocation.peerConnections[peer] == nil else {
            reply.send(reply.error(.connectionAlreadyExists, "a connection to \(peer) exists"))
            return
        }
        if let why = admitPeerConnection(allocation) {
            shared.metrics.refused("peer_connections")
            reply.send(reply.error(.insufficientCapacity, why))
            return
        }
        allocation.peerConnections[peer] = 0
        allocation.connecting += 1
        let budget = shared.budget
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.reusePort, value: 1)
            .channelOption(.autoRead, value: false)
            .connectTimeout(Self.peerConnectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TCPPeerHandler(outgoingFrom: bound))
                }
            }
            .bind(to: allocation.relayAddress)
            .connect(to: peer)
            .assumeIsolated()
            .whenComplete { [self] result in
                allocation.connecting -= 1
                guard allocations[tuple] === allocation, case .success(let channel) = result else {
                    budget.release()
                    if case .success(let channel) = result { channel.close(promise: nil) }
                    if case .failure(let error) = result, allocations[tuple] === allocation {
                        allocation.peerConnections[peer] = nil
                        reply.send(reply.error(.connectionTimeoutOrFailure, "could not connect to \(peer): \(error)"))
                    }
                    return
                }
                let id = registerPending(channel, peer: peer, allocation: allocation)
                reply.send(reply.success { $0.append(.connectionID, uint32: id) })
            }
    }

    /// A peer connected to a TCP allocation's relayed address (RFC 6062 §5.3).
    func incomingPeerConnection(_ channel: Channel, relay: SocketAddress) {
        guard let peer = channel.remoteAddress, let ip = IPAddress(peer),
              let allocation = allocations.values.first(where: { $0.isTCP && $0.relayAddress == relay }),
              allocation.hasPermission(ip, now: .now()), allocation.peerConnections[peer] == nil else {
            tally.droppedNoPermission += 1
            channel.close(promise: nil)
            return
        }
        if admitPeerConnection(allocation) != nil {
            shared.metrics.refused("peer_connections")
            channel.close(promise: nil)
            return
        }
        let id = registerPending(channel, peer: peer, allocation: allocation)
        var indication = STUNMessage(type: STUNMessageType(.connectionAttempt, .indication))
        indication.append(.connectionID, uint32: id)
        indication.appendXORAddress(.xorPeerAddress, peer)
        allocation.client.send(indication.encode(), flush: true)
    }

    /// Waits for the ConnectionBind of a peer connection that holds a budget slot; the slot is
    /// given back when the connection closes.
    private func registerPending(_ channel: Channel, peer: SocketAddress, allocation: Allocation) -> UInt32 {
        let shared = self.shared
        var id: UInt32 = 0
        shared.pendingConnections.withLock { table in
            repeat { id = UInt32.random(in: 1...UInt32.max) } while table[id] != nil
            let timeout = channel.eventLoop.scheduleTask(in: Self.connectionBindTimeout) { [id] in
                if let stale = shared.pendingConnections.withLock({ $0.removeValue(forKey: id) }) {
                    stale.peerChannel.close(promise: nil)
                }
            }
            table[id] = PendingPeerConnection(peerChannel: channel, username: allocation.username, timeout: timeout)
        }
        allocation.peerConnections[peer] = id
        allocation.peerChannels[ObjectIdentifier(channel)] = channel
        let bound = NIOLoopBound((allocation, peer, ObjectIdentifier(channel)), eventLoop: eventLoop)
        let budget = shared.budget
        channel.closeFuture.whenComplete { _ in
            budget.release()
            let (allocation, peer, key) = bound.value
            allocation.peerConnections[peer] = nil
            allocation.peerChannels[key] = nil
        }
        return id
    }

    /// RFC 6062 §5.4: binds this new client connection to a waiting peer connection.
    func handleConnectionBind(_ reply: Reply, tuple: FiveTuple, username: String) {
        guard case .stream(let dataChannel) = reply.link, allocations[tuple] == nil else {
            reply.send(reply.error(.badRequest, "ConnectionBind must come on a new TCP connection"))
            return
        }
        let id: UInt32
        do {
            guard let value = try reply.request.connectionID() else {
                reply.send(reply.error(.badRequest, "CONNECTION-ID is missing"))
                return
            }
            id = value
        } catch {
            reply.send(reply.error(.badRequest, error.reason))
            return
        }
        let taken: PendingPeerConnection? = shared.pendingConnections.withLock { table in
            guard let entry = table[id], entry.username == username else { return nil }
            table[id] = nil
            return entry
        }
        guard let pending = taken else {
            reply.send(reply.error(.badRequest, "no connection waits under CONNECTION-ID \(id) for this user"))
            return
        }
        pending.timeout.cancel()
        reply.send(reply.success())
        if let handler = try? dataChannel.pipeline.syncOperations.handler(type: TURNStreamHandler.self) {
            handler.splice(to: pending.peerChannel)
        }
        let peerChannel = pending.peerChannel
        peerChannel.eventLoop.execute {
            if let handler = try? peerChannel.pipeline.syncOperations.handler(type: TCPPeerHandler.self) {
                handler.partner = dataChannel
            }
            peerChannel.setOption(.autoRead, value: true).whenSuccess { peerChannel.read() }
        }
    }
}

/// A TCP connection between a TCP allocation's relayed address and a peer. Reads nothing
/// until its ConnectionBind, then copies bytes to the client's data connection.
final class TCPPeerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let loop: NIOLoopBound<TURNLoop>
    private let incomingRelay: SocketAddress?
    var partner: Channel?

    init(incomingTo loop: NIOLoopBound<TURNLoop>, relay: SocketAddress) {
        self.loop = loop
        self.incomingRelay = relay
    }

    init(outgoingFrom loop: NIOLoopBound<TURNLoop>) {
        self.loop = loop
        self.incomingRelay = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if let relay = incomingRelay { loop.value.incomingPeerConnection(context.channel, relay: relay) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let partner else { return }
        let bytes = unwrapInboundIn(data)
        loop.value.tally.tcpBytesToClient += bytes.readableBytes
        partner.write(bytes, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if let partner { TCPRelayPipe.follow(writabilityOf: context.channel, reader: partner) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let partner { TCPRelayPipe.closeAfterPendingWrites(partner) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
