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
/// news too (the forwarder's session): the alternative, a copy of each datagram through a second
/// stream read by the transport's own task, wakes one more thread per packet. Datagrams before a
/// transport is attached are dropped and counted: the forwarder is the DTLS client and sends
/// first (RFC 5763 §5, `a=setup:active`), so nothing a peer may send comes earlier.
public final class ICEDatagramFeed: Sendable {
    private let transport = Mutex<DTLSSRTPTransport?>(nil)
    private let early = Atomic<Int>(0)
    private let end: AsyncStream<DatagramEvent>.Continuation
    /// The path's events for the transport's init: nothing but their end (``finish()``); the
    /// datagrams and readiness come through ``feed(_:)``.
    public let events: AsyncStream<DatagramEvent>

    /// A feed with no transport yet.
    public init() { (events, end) = AsyncStream.makeStream() }

    /// Datagrams go to `transport` from now on.
    /// - Parameter agent: when given, its datagrams from now on skip its event stream and go to
    ///   the transport on the GLib thread as they come off the socket
    ///   (``ICEAgent/deliverDatagrams(to:)``): decrypting there, and what the transport's packet
    ///   handler does, wakes no thread per packet. The tap holds the transport weakly (the
    ///   transport's path holds the agent).
    public func attach(_ transport: DTLSSRTPTransport, tapping agent: ICEAgent? = nil) {
        self.transport.withLock { $0 = transport }
        agent?.deliverDatagrams(to: ICEDatagramTap { [weak transport] datagram, arrival in
            transport?.handle(.received(datagram, arrival: arrival))
        })
    }

    /// Passes a received datagram, or the component's connecting, to the transport.
    public func feed(_ event: ICEAgentEvent) {
        guard let pathEvent = ICEDatagramPath.datagramEvent(for: event) else { return }
        guard let transport = transport.withLock({ $0 }) else {
            if case .received = pathEvent { early.add(1, ordering: .relaxed) }
            return
        }
        transport.handle(pathEvent)
    }

    /// Datagrams dropped because they came before a transport was attached.
    public var droppedBeforeAttach: Int { early.load(ordering: .relaxed) }

    /// The agent's events ended: so does the path.
    public func finish() { end.finish() }
}
