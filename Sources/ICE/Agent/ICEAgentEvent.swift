public import NIOCore

/// The state of the agent's single component (RFC 8445 §6.1.3 / libnice's component
/// state machine).
public enum ICEComponentState: String, Sendable, Hashable {
    /// No activity yet, or the component was reset.
    case disconnected
    /// Local candidates are being gathered.
    case gathering
    /// Connectivity checks are running.
    case connecting
    /// At least one pair works; selection may still change.
    case connected
    /// A pair is nominated; ICE has completed for this component.
    case ready
    /// Every check failed (with trickle, only after the end of remote candidates), or
    /// consent was lost (RFC 7675 §5.1).
    case failed
}

/// The candidate pair the agent sends on.
public struct ICESelectedPair: Sendable, Hashable, CustomStringConvertible {
    /// This agent's side; its ``ICECandidate/kind`` says whether it sends via a relay.
    public var local: ICECandidate
    /// The peer's side (peer-reflexive when learned from a check, RFC 8445 §7.3.1.3).
    public var remote: ICECandidate
    /// Creates a pair.
    public init(local: ICECandidate, remote: ICECandidate) {
        self.local = local
        self.remote = remote
    }
    /// For example `host 127.0.0.1:40000 <-> relay 127.0.0.1:50000`.
    public var description: String {
        "\(local.kind.rawValue) \(local.address):\(local.port) <-> \(remote.kind.rawValue) \(remote.address):\(remote.port)"
    }
}

/// Something the agent reports, in the order libnice reports it.
public enum ICEAgentEvent: Sendable {
    /// A local candidate was gathered; signal it to the peer (trickle, RFC 8838 §8).
    case localCandidate(ICECandidate)
    /// Local gathering finished; signal end-of-candidates to the peer.
    case gatheringDone
    /// The component changed state.
    case stateChanged(ICEComponentState)
    /// A pair was selected (or replaced by a better one) for sending.
    case selectedPair(ICESelectedPair)
    /// A packet arrived from the peer (not STUN; libnice consumes those). `arrival` is when
    /// libnice handed it over, on its receive callback right after reading the socket: the
    /// queues after it (this stream, the transport's, the consumer's) add a delay that varies
    /// with the load, and a receive-side estimate that stamped later would read that as a queue
    /// on the path (docs/rooms.md "Arrival times are taken at the socket").
    case dataReceived(ByteBuffer, arrival: ContinuousClock.Instant)
}

extension ICEAgentEvent {
    /// Whether this is a received packet — the events ``ICEAgent/events`` bounds and drops when
    /// its consumer falls behind; every other event is control and is never dropped.
    public var isData: Bool {
        if case .dataReceived = self { true } else { false }
    }
}

/// A synchronous receiver of an agent's datagrams (``ICEAgent/deliverDatagrams(to:)``), called on
/// the GLib thread with each datagram and the time it came off the socket. It must not block:
/// every agent's checks and keepalives run on that thread.
///
/// A struct rather than a bare closure: kept in a `Mutex` and read per datagram, a bare closure
/// is re-wrapped in reabstraction thunks at each access (see `DTLSSRTPTransport`'s handler).
public struct ICEDatagramTap: Sendable {
    let deliver: @Sendable (ByteBuffer, ContinuousClock.Instant) -> Void

    /// A tap that hands each datagram to `deliver`.
    public init(_ deliver: @escaping @Sendable (ByteBuffer, ContinuousClock.Instant) -> Void) { self.deliver = deliver }
}
