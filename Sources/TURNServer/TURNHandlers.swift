import NIOCore
import STUN

/// Receives datagrams on a UDP listener (STUN, TURN control, ChannelData and Send).
final class TURNDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let loop: NIOLoopBound<TURNLoop>
    private var localAddress: SocketAddress?
    private var listener: ObjectIdentifier?

    init(loop: NIOLoopBound<TURNLoop>) {
        self.loop = loop
    }

    func handlerAdded(context: ChannelHandlerContext) {
        listener = ObjectIdentifier(context.channel)
    }

    func channelActive(context: ChannelHandlerContext) {
        localAddress = context.channel.localAddress
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        // The data path: ChannelData of a known client goes straight to its allocation.
        if ChannelData.looksLikeChannelData(envelope.data), let listener,
           let allocation = loop.value.datagramAllocation(listener: listener, client: envelope.remoteAddress) {
            loop.value.receiveChannelData(envelope.data, allocation: allocation)
            return
        }
        guard let server = localAddress ?? context.channel.localAddress else { return }
        let tuple = FiveTuple(client: envelope.remoteAddress, server: server, transport: .udp)
        loop.value.receive(envelope.data, from: .datagram(context.channel, envelope.remoteAddress), tuple: tuple)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP errors surface here on Linux (ECONNREFUSED); a UDP listener must survive them.
    }
}

/// Receives datagrams from peers on an allocation's relayed address.
final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let loop: NIOLoopBound<TURNLoop>
    private let allocation: NIOLoopBound<Allocation>

    init(loop: NIOLoopBound<TURNLoop>, allocation: NIOLoopBound<Allocation>) {
        self.loop = loop
        self.allocation = allocation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        loop.value.relayReceived(unwrapInboundIn(data), allocation: allocation.value)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A peer's ICMP port unreachable must not end the allocation.
    }
}

/// A client's TCP or TLS connection: cuts the stream into STUN and ChannelData frames
/// (RFC 8656 §12.5), or after an RFC 6062 ConnectionBind copies raw bytes to the peer.
///
/// A connection that holds no allocation is closed ``TURNServerConfiguration/streamIdleTimeout``
/// after it opened or after its allocation ended, whatever it sends: Bindings or a trickle of
/// bytes do not keep it (each connection holds a file descriptor). An allocation keeps it as
/// long as the allocation lives; an RFC 6062 data connection lives as long as its peer.
final class TURNStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Frames larger than this cannot be STUN or ChannelData; a buffer this full means abuse.
    static let maximumBuffered = 128 * 1024

    private let loop: NIOLoopBound<TURNLoop>
    private let transport: ClientTransport
    /// When the TCP connection was accepted (before TLS detection): the idle timeout counts
    /// from here, not from the handshake.
    private let opened: NIODeadline
    private var framer = STUNStreamFramer()
    private var buffered: ByteBuffer?
    private var tuple: FiveTuple?
    private var spliced: Channel?
    private var idleTimer: Scheduled<Void>?

    init(loop: NIOLoopBound<TURNLoop>, transport: ClientTransport, opened: NIODeadline = .now()) {
        self.loop = loop
        self.transport = transport
        self.opened = opened
    }

    func channelActive(context: ChannelHandlerContext) {
        if let client = context.channel.remoteAddress, let server = context.channel.localAddress {
            tuple = FiveTuple(client: client, server: server, transport: transport)
        }
        startIdleTimer(channel: context.channel, deadline: opened + loop.value.config.streamIdleTimeout)
        context.fireChannelActive()
    }

    /// The connection's allocation was deleted while the connection stays open: it gets the
    /// idle timeout again to allocate anew, then it is closed.
    func allocationEnded(channel: Channel) {
        startIdleTimer(channel: channel, deadline: .now() + loop.value.config.streamIdleTimeout)
    }

    private func startIdleTimer(channel: Channel, deadline: NIODeadline) {
        idleTimer?.cancel()
        let bound = NIOLoopBound(self, eventLoop: channel.eventLoop)
        idleTimer = channel.eventLoop.scheduleTask(deadline: deadline) { bound.value.idleTimerFired(channel: channel) }
    }

    /// Closes the connection unless an allocation or a spliced peer keeps it. An Allocate still
    /// binding its relay socket gets another timeout: if it fails, nothing else would close it.
    private func idleTimerFired(channel: Channel) {
        idleTimer = nil
        guard spliced == nil else { return }
        let turn = loop.value
        if let tuple {
            if turn.allocations[tuple] != nil { return }
            if turn.pending.contains(tuple) {
                startIdleTimer(channel: channel, deadline: .now() + turn.config.streamIdleTimeout)
                return
            }
        }
        turn.shared.metrics.idleConnectionsClosed.increment()
        channel.close(promise: nil)
    }

    /// RFC 6062 §5.4: from now on this connection carries the peer's bytes, unframed.
    func splice(to peer: Channel) {
        spliced = peer
        idleTimer?.cancel()
        idleTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if let peer = spliced {
            loop.value.tally.tcpBytesToPeer += bytes.readableBytes
            peer.write(bytes, promise: nil)
            return
        }
        if buffered == nil || buffered!.readableBytes == 0 {
            buffered = bytes
        } else {
            buffered!.writeBuffer(&bytes)
        }
        guard let tuple else { return }
        let link = ClientLink.stream(context.channel)
        do {
            while spliced == nil, let frame = try framer.next(from: &buffered!) {
                switch frame {
                case .stun(let message), .channelData(let message):
                    loop.value.receive(message, from: link, tuple: tuple)
                }
            }
        } catch {
            loop.value.shared.metrics.malformed.increment()
            context.close(promise: nil)
            return
        }
        if let peer = spliced, var rest = buffered, rest.readableBytes > 0 {
            buffered = nil
            loop.value.tally.tcpBytesToPeer += rest.readableBytes
            peer.write(rest.readSlice(length: rest.readableBytes)!, promise: nil)
        }
        if let count = buffered?.readableBytes, count > Self.maximumBuffered {
            context.close(promise: nil)
        } else if buffered?.readableBytes == 0 {
            buffered = nil
        } else {
            buffered?.discardReadBytes()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        spliced?.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if let peer = spliced { TCPRelayPipe.follow(writabilityOf: context.channel, reader: peer) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        if let peer = spliced { TCPRelayPipe.closeAfterPendingWrites(peer) }
        if let tuple { loop.value.clientClosed(tuple) }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // On a port shared with the web server (``TURNServer/adoptStream(_:transport:opened:)``) the web
        // server's graceful stop asks each connection to finish; a TURN connection has no
        // request to finish and would hold the stop up until its allocation expires.
        // That server also allows half-closed connections: a TURN client that closed its side
        // has ended the connection (RFC 8656 §3.1: its allocation lives as long as it).
        if event is ChannelShouldQuiesceEvent || event as? ChannelEvent == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
