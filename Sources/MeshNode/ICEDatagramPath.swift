public import DTLSSRTP
public import ICE
public import NIOCore
import Synchronization

/// An ICE agent's component as the path under DTLS-SRTP. The two layers know nothing of each
/// other; a call composes them here.
public struct ICEDatagramPath: DatagramTransport {
    /// The agent whose selected pair carries the datagrams.
    public let agent: ICEAgent

    /// Wraps `agent`.
    public init(agent: ICEAgent) { self.agent = agent }

    /// Sends on the selected pair; throws before one is selected.
    public func send(_ datagram: ByteBuffer) throws { try agent.send(datagram) }

    /// Whether the component is connected (DTLS may start at once).
    public func isReady() async -> Bool {
        guard let state = try? await agent.state() else { return false }
        return state == .connected || state == .ready
    }

    /// The agent's events as path events, mapped lazily (no second stream per datagram): received
    /// data, and ``DatagramEvent/ready`` when the component connects. The other ICE events
    /// (candidates, pairs) are for the caller, which reads its own copy of them.
    /// - Parameter events: the agent's events, or a copy of them the caller forwards.
    public func datagramEvents(from events: some AsyncSequence<ICEAgentEvent, Never> & Sendable) -> DatagramEvents {
        events.compactMap(Self.datagramEvent(for:))
    }

    /// What an agent event is to the path under DTLS-SRTP, if anything: a received datagram, or
    /// the component's connecting.
    static func datagramEvent(for event: ICEAgentEvent) -> DatagramEvent? {
        switch event {
        case .dataReceived(let datagram, let arrival): .received(datagram, arrival: arrival)
        case .stateChanged(.connected), .stateChanged(.ready): .ready
        default: nil
        }
    }
}

/// Hands an ICE agent's received datagrams to a DTLS-SRTP transport (``DTLSSRTPTransport/handle(_:)``)
/// on the thread that reads the agent's events, or, tapped (``attach(_:tapping:)``), on the GLib
/// thread as they come off the socket — for a reader that reads the agent's events for other
/// news too (a forwarder's session, a ``Call``): the alternative, a copy of each datagram through
/// a second stream read by the transport's own task, wakes one more thread per packet.
///
/// What arrives before a transport is attached waits (at most ``earlyBound`` datagrams) and is
/// handed in, in order, when one is: a call that answers as DTLS server may get the peer's
/// ClientHello (RFC 5763 §5) as soon as ICE connects, before its transport exists (the
/// forwarder is the DTLS client and sends first, so nothing is expected there). Datagrams past
/// the bound are dropped and counted, as a full socket buffer drops them.
public final class ICEDatagramFeed: Sendable {
    private struct State {
        var transport: DTLSSRTPTransport?
        var early: [DatagramEvent] = []
    }

    private let state = Mutex(State())
    private let dropped = Atomic<Int>(0)
    private let end: AsyncStream<DatagramEvent>.Continuation
    /// The path's events for the transport's init: nothing but their end (``finish()``); the
    /// datagrams and readiness come through ``feed(_:)``.
    public let events: AsyncStream<DatagramEvent>

    /// How many events may wait for a transport: a DTLS flight or two and the component's
    /// connecting; nothing else can usefully come before the handshake.
    public static let earlyBound = 64

    /// A feed with no transport yet.
    public init() { (events, end) = AsyncStream.makeStream() }

    /// Datagrams go to `transport` from now on; those that waited for it are handed in first.
    /// - Parameter agent: when given, its datagrams from now on skip its event stream and go to
    ///   the transport on the GLib thread as they come off the socket
    ///   (``ICEAgent/deliverDatagrams(to:)``): decrypting there, and what the transport's packet
    ///   handler does, wakes no thread per packet. The tap holds the transport weakly (the
    ///   transport's path holds the agent).
    public func attach(_ transport: DTLSSRTPTransport, tapping agent: ICEAgent? = nil) {
        // Handed in under the lock, so a datagram the reader feeds meanwhile waits its turn.
        state.withLock { state in
            state.transport = transport
            for event in state.early { transport.handle(event) }
            state.early = []
        }
        agent?.deliverDatagrams(to: ICEDatagramTap { [weak transport] datagram, arrival in
            transport?.handle(.received(datagram, arrival: arrival))
        })
    }

    /// Passes a received datagram, or the component's connecting, to the transport.
    public func feed(_ event: ICEAgentEvent) {
        guard let pathEvent = ICEDatagramPath.datagramEvent(for: event) else { return }
        let transport = state.withLock { state -> DTLSSRTPTransport? in
            if let transport = state.transport { return transport }
            switch pathEvent {
            case .received where state.early.count >= Self.earlyBound:
                dropped.add(1, ordering: .relaxed)
            case .ready where state.early.contains(where: { if case .ready = $0 { true } else { false } }):
                break  // one is enough: the transport only needs to know the path is up
            default:
                // The component's connecting always waits, whatever came before it.
                state.early.append(pathEvent)
            }
            return nil
        }
        transport?.handle(pathEvent)
    }

    /// Datagrams dropped because more than ``earlyBound`` came before a transport was attached.
    public var droppedBeforeAttach: Int { dropped.load(ordering: .relaxed) }

    /// The agent's events ended: so does the path.
    public func finish() { end.finish() }
}
