public import DTLSSRTP
public import ICE
public import NIOCore

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
        events.compactMap { event -> DatagramEvent? in
            switch event {
            case .dataReceived(let datagram, let arrival): .received(datagram, arrival: arrival)
            case .stateChanged(.connected), .stateChanged(.ready): .ready
            default: nil
            }
        }
    }
}
