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

    /// The agent's events as path events: received data, and ``DatagramEvent/ready`` when the
    /// component is connected — at once if it connected before this stream was made. The other
    /// ICE events (candidates, pairs) are for the caller, which reads its own copy of them.
    /// - Parameter events: the agent's events, or a copy of them the caller forwards.
    public func datagramEvents(from events: AsyncStream<ICEAgentEvent>) -> AsyncStream<DatagramEvent> {
        let agent = self.agent
        return AsyncStream { continuation in
            let task = Task {
                if let state = try? await agent.state(), state == .connected || state == .ready {
                    continuation.yield(.ready)
                }
                for await event in events {
                    switch event {
                    case .dataReceived(let datagram): continuation.yield(.received(datagram))
                    case .stateChanged(.connected), .stateChanged(.ready): continuation.yield(.ready)
                    default: break
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
