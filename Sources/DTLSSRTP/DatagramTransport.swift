public import NIOCore

/// The path under DTLS-SRTP: anything that sends and receives whole datagrams. In a call it is
/// the selected pair of an ICE component (adapted in the composing layer, `MeshNode`); in tests
/// it can be a UDP socket pair or an in-memory link. Keeping ICE out of this layer is what lets
/// DTLS and SRTP be read, tested and fuzzed without libnice.
public protocol DatagramTransport: Sendable {
    /// Sends one datagram to the peer, as is. Throws when the path cannot send now (no
    /// selected pair yet, closed); the transport maps that to ``TransportError`` `notConnected`.
    func send(_ datagram: ByteBuffer) throws

    /// Whether the path can already carry datagrams: asked once at ``DTLSSRTPTransport/start()``,
    /// for a path that became ready before the transport read its events.
    func isReady() async -> Bool
}

extension DatagramTransport {
    /// A path that says so with ``DatagramEvent/ready`` only.
    public func isReady() async -> Bool { false }
}

/// The events of a path as the transport reads them: any sequence, so that an adapter can map
/// another component's events lazily instead of copying each datagram through a second stream.
public typealias DatagramEvents = any AsyncSequence<DatagramEvent, Never> & Sendable

/// What a ``DatagramTransport`` delivers to ``DTLSSRTPTransport``, in order. The stream ending
/// means the path is gone for good.
public enum DatagramEvent: Sendable {
    /// A datagram from the peer (DTLS, SRTP, SRTCP or anything else: RFC 7983 sorts them),
    /// taken off the socket at `arrival` (the path stamps it as early as it can; the
    /// transport passes the stamp on with the packet, ``TransportEvent/rtp(_:arrival:)``).
    case received(ByteBuffer, arrival: ContinuousClock.Instant)
    /// The path can carry datagrams to the peer now (ICE connected): the DTLS client may send
    /// its ClientHello. Repeating it is harmless.
    case ready
}
