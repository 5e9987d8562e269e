import DTLSSRTP
import Logging
import MeshCore
import RTP
import Synchronization

/// The first stop of a participant's received packets on the forwarder: it stamps each packet's
/// arrival, parses it once, makes the uplink's transport-cc feedback (``UplinkTransportFeedback``)
/// and hands the packet to the forwarding (``ForwardedPacketSink``), on the same thread; the
/// transport's state changes go to the ``ForwardedCall`` actor's queue.
///
/// The arrival is the packet's own stamp, taken as its datagram came off the socket
/// (``TransportEvent/rtp(_:arrival:)``); the feedback goes out as the packet is decrypted.
/// It runs where the transport decrypts — the DTLS-SRTP transport hands it each packet on the
/// thread that read the datagram (``DTLSSRTPTransport/deliverPackets(to:)``) — so the stamp and
/// the feedback wait for no other task and no thread is woken in between: the feedback must
/// carry when a packet arrived, not when the forwarding got to it, or the sender's delay-based
/// estimate reads the actor's backlog as a queue on its path (docs/rooms.md "Chromium's top
/// layer"). The transport's other events (and packets it queued before the hand-over began)
/// come through ``DTLSSRTPTransport/events`` and the same ``stamp(_:)``.
final class UplinkStamper: Sendable {
    private struct State {
        var feedback: UplinkTransportFeedback
        var lastLog: ContinuousClock.Instant
    }

    private let state: Mutex<State>
    private let states: BoundedEventStream<TransportEvent>.Producer
    private let forward: ForwardedPacketSink
    private weak let transport: DTLSSRTPTransport?
    private let logger: Logger
    private let label: String

    /// - Parameters:
    ///   - label: names the call and participant in the log.
    init(feedback: UplinkTransportFeedback, transport: DTLSSRTPTransport, states: BoundedEventStream<TransportEvent>.Producer,
         forward: ForwardedPacketSink, logger: Logger, label: String) {
        state = Mutex(State(feedback: feedback, lastLog: .now))
        self.states = states
        self.forward = forward
        self.transport = transport
        self.logger = logger
        self.label = label
    }

    /// Stamps `event`, makes the feedback it completes and hands it on: a packet to the
    /// forwarding, a state change to the actor's queue.
    func stamp(_ event: TransportEvent) {
        let read = ContinuousClock.now
        // Parsed once, here: the forwarding takes the parsed packet (one that does not parse is
        // parsed there again, to be refused with its reason).
        var parsed: RTPPacket?
        var arrival = read
        switch event {
        case .rtp(let bytes, let stamped):
            parsed = try? RTPPacket(parsing: bytes)
            arrival = stamped
        case .rtcp(_, let stamped): arrival = stamped
        case .connected, .failed, .closedByPeer:
            _ = states.yield(event)
            return
        }
        let (packets, statistics) = state.withLock { state -> ([RTCPPacket]?, String?) in
            let packets = parsed.flatMap { state.feedback.received($0, at: arrival, now: read) }
            guard read - state.lastLog >= ForwardedCall.layerLogInterval else { return (packets, nil) }
            state.lastLog = read
            return (packets, "\(state.feedback.statistics)")
        }
        if let packets, let compound = try? RTCPPacket.serializeCompound(packets) {
            // Before the DTLS handshake is done nothing can be sent: the next one will.
            try? transport?.sendRTCP(compound)
        }
        if let statistics { logger.info("forwarded call \(label)'s uplink \(statistics)") }
        forward.deliver(event, parsed, arrival)
    }

    /// No more events: the actor's queue ends once read.
    func finish() { states.finish() }
}

/// Where a participant's stamped packets are forwarded (``ForwardedCall``): each event, its
/// packet parsed (nil when it did not parse or is RTCP) and when it came off the socket. A
/// struct, not a bare closure, for the reason `DTLSSRTPTransport`'s handler is one.
struct ForwardedPacketSink: Sendable {
    let deliver: @Sendable (TransportEvent, RTPPacket?, ContinuousClock.Instant) -> Void
}
