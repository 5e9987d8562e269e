import DTLSSRTP
import Media
import NIOCore

/// Where a call's decrypted packets go, on the thread that read their datagrams
/// (``DTLSSRTPTransport/deliverPackets(to:)``): to the call's media engine, or in a call to a
/// forwarder to each sender's engine by SSRC, with the transport's transport-cc feedback made on
/// the way. Quick and non-blocking: each engine only queues the packet for its media thread.
///
/// Every receive-side time is the packet's arrival at the socket, not now (docs/rooms.md
/// "Arrival times are taken at the socket").
struct CallPacketReceiver: Sendable {
    let media: MediaSlot
    /// A forwarded call's receivers; `nil` in a call to one peer.
    let forwarded: ForwardedReceivers?
    /// Weak: the transport keeps this receiver as its packet handler.
    weak let transport: DTLSSRTPTransport?

    init(media: MediaSlot, forwarded: ForwardedReceivers?, transport: DTLSSRTPTransport) {
        self.media = media
        self.forwarded = forwarded
        self.transport = transport
    }

    func receive(_ event: TransportEvent) {
        switch event {
        case .rtp(let packet, let arrival):
            // A forwarded call: each other participant's streams to its own engine, by the SSRCs
            // the forwarder offered; anything else is dropped.
            if let forwarded {
                // Parsed once, for the transport's feedback and for the sender's engine.
                guard let received = forwarded.received(rtp: packet, arrival: arrival) else { return }
                if let feedback = received.feedback { try? transport?.sendRTCP(feedback) }
                forwarded.engine(forSSRC: received.packet.ssrc)?.receive(rtp: received.packet, size: packet.readableBytes, arrival: arrival)
            } else {
                media.engine?.receive(rtp: packet, arrival: arrival)
            }
        case .rtcp(let packet, let arrival):
            media.engine?.receive(rtcp: packet, arrival: arrival)
            media.share?.receive(rtcp: packet, arrival: arrival)
            for engine in forwarded?.engines ?? [] { engine.receive(rtcp: packet, arrival: arrival) }
        case .connected, .failed, .closedByPeer:
            break
        }
    }
}
