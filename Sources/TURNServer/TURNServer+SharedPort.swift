import NIOCore
import Synchronization

/// TURN over TLS on a port that another server owns (the node's HTTPS port with `single-port`,
/// for networks that let nothing out but TCP 443): that server accepts the connection and does
/// the TLS handshake, and when the first bytes are STUN it hands the connection over here. From
/// then on it is a TURN TLS connection like one on ``TURNServerConfiguration/tlsPort``, with the
/// same caps (``StreamConnectionGate``), idle timeout and allocations.
extension TURNServer {
    /// A place in the TURN server's connection caps, held by a connection on a shared port
    /// while it is still unknown whether it is TURN, and for as long as it is TURN. Given back
    /// when the connection closes or with ``release()`` when it turns out to be something else
    /// (whose own caps then apply).
    public final class StreamPlace: Sendable {
        private let releaser: Mutex<(@Sendable () -> Void)?>

        init(_ release: @escaping @Sendable () -> Void) {
            releaser = Mutex(release)
        }

        /// Gives the place back; later calls do nothing.
        public func release() {
            let release = releaser.withLock { r in
                defer { r = nil }
                return r
            }
            release?()
        }
    }

    /// Takes a place for a connection just accepted on a shared port, or returns nil when the
    /// TURN caps (total, per source, the node's connection budget) refuse it or the server is
    /// not running: the caller closes the connection then. The place is given back when the
    /// channel closes, at the latest.
    public func admitSharedConnection(_ channel: Channel) -> StreamPlace? {
        guard let shared = state.withLock({ $0.loops.isEmpty ? nil : $0.shared }) else { return nil }
        return Self.takePlace(for: channel, shared: shared)
    }

    /// Serves `channel` as a TURN client connection from now on: appends the stream handler to
    /// its pipeline (for `.tls` the TLS handler is already in it). Call on the channel's event
    /// loop, then pass `channelActive` and the bytes read so far down the pipeline. `opened`
    /// is when the connection was accepted: the idle timeout counts from there.
    public func adoptStream(_ channel: Channel, transport: ClientTransport = .tls, opened: NIODeadline) throws {
        channel.eventLoop.preconditionInEventLoop()
        guard let loop = loop(on: channel.eventLoop) else {
            throw TURNServerError(.configuration, "the TURN server is not running")
        }
        try channel.pipeline.syncOperations.addHandler(TURNStreamHandler(loop: loop, transport: transport, opened: opened))
    }

    /// Announces a port another server shares with TURN over TLS: it is listed in
    /// ``listeners`` (so in the ICE servers handed to clients, as `turns:`) and, like every
    /// listener, refused as a relay peer.
    public func addSharedListener(_ address: SocketAddress) {
        let shared = state.withLock { s in
            if !s.sharedListeners.contains(where: { $0.address == address }) {
                s.sharedListeners.append(Listener(transport: .tls, address: address))
            }
            return s.shared
        }
        if let port = address.port { shared?.listenerPorts.withLock { _ = $0.insert(port) } }
    }

    /// The allocations of `eventLoop`: the server's own loops have theirs from the start; a loop
    /// of the other server gets its own on its first TURN connection (allocations are per loop,
    /// so that a connection, its allocation and its relay socket share a thread). Nil once
    /// stopped or before start.
    private func loop(on eventLoop: EventLoop) -> NIOLoopBound<TURNLoop>? {
        state.withLock { s in
            guard let shared = s.shared, !s.loops.isEmpty else { return nil }
            if let bound = s.loops[ObjectIdentifier(eventLoop)] { return bound }
            let turnLoop = TURNLoop(eventLoop: eventLoop, shared: shared)
            turnLoop.start()
            let bound = NIOLoopBound(turnLoop, eventLoop: eventLoop)
            s.loops[ObjectIdentifier(eventLoop)] = bound
            return bound
        }
    }
}
