import DTLSSRTP
import Logging
import MeshCore
import RTP
import Synchronization

/// The first stop of a participant's received packets on the forwarder, before the
/// ``ForwardedCall`` actor: it stamps each packet's arrival, parses it once, makes the uplink's
/// transport-cc feedback (``UplinkTransportFeedback``) and queues the packet for the actor.
///
/// The arrival is the packet's own stamp, taken as its datagram came off the socket
/// (``TransportEvent/rtp(_:arrival:)``); the feedback goes out by the time it is read here.
/// It runs where the transport decrypts — the DTLS-SRTP transport hands it each packet on the
/// thread that read the datagram (``DTLSSRTPTransport/deliverPackets(to:)``) — so the stamp and
/// the feedback wait for no other task and no thread is woken in between: the feedback must
/// carry when a packet arrived, not when the actor got to it, or the sender's delay-based
/// estimate reads the actor's backlog as a queue on its path (docs/rooms.md "Chromium's top
/// layer"). The transport's other events (and packets it queued before the hand-over began)
/// come through ``DTLSSRTPTransport/events`` and the same ``stamp(_:)``.
final class UplinkStamper: Sendable {
    private struct State {
        var feedback: UplinkTransportFeedback
        var lastLog: ContinuousClock.Instant
    }

    private let state: Mutex<State>
    private let stamper: BoundedEventStream<StampedTransportEvent>.Producer
    private weak let transport: DTLSSRTPTransport?
    private let logger: Logger
    private let label: String

    /// - Parameters:
    ///   - label: names the call and participant in the log.
    init(feedback: UplinkTransportFeedback, transport: DTLSSRTPTransport, stamper: BoundedEventStream<StampedTransportEvent>.Producer,
         logger: Logger, label: String) {
        state = Mutex(State(feedback: feedback, lastLog: .now))
        self.stamper = stamper
        self.transport = transport
        self.logger = logger
        self.label = label
    }

    /// Stamps `event`, makes the feedback it completes and queues it for the actor.
    func stamp(_ event: TransportEvent) {
        let read = ContinuousClock.now
        // Parsed once, here: the actor forwards the parsed packet (one that does not parse is
        // parsed there again, to be refused with its reason).
        var parsed: RTPPacket?
        var arrival = read
        switch event {
        case .rtp(let bytes, let stamped):
            parsed = try? RTPPacket(parsing: bytes)
            arrival = stamped
        case .rtcp(_, let stamped): arrival = stamped
        case .connected, .failed, .closedByPeer: break
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
        _ = stamper.yield(StampedTransportEvent(event: event, packet: parsed, arrival: arrival))
    }

    /// No more events: the actor's queue ends once read.
    func finish() { stamper.finish() }
}
