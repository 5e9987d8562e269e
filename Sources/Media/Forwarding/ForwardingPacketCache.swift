import RTP

/// The packets of one source stream the forwarder received recently, by sequence number: what
/// it answers receivers' NACKs from (RFC 4585 §6.2.1) without asking the source again.
///
/// One cache per source, not per receiver: each receiver's copy differs only in header fields the
/// forwarder rewrites on the way out, so n receivers share one copy of the payload. A ring of
/// `capacity` slots (a power of two) indexed by the sequence number's low bits: a new packet
/// overwrites the one `capacity` numbers older, so the memory is fixed whatever the source sends.
struct ForwardingPacketCache: Sendable {
    private struct Slot: Sendable {
        var packet: RTPPacket
        var arrival: Duration
    }

    private var slots: [Slot?]
    private let mask: Int
    let maxAge: Duration

    /// A cache of `capacity` packets (rounded up to a power of two), each kept at most `maxAge`.
    init(capacity: Int, maxAge: Duration) {
        var size = 1
        while size < max(capacity, 1) { size <<= 1 }
        slots = Array(repeating: nil, count: size)
        mask = size - 1
        self.maxAge = maxAge
    }

    var capacity: Int { slots.count }

    mutating func insert(_ packet: RTPPacket, now: Duration) {
        slots[Int(packet.sequenceNumber) & mask] = Slot(packet: packet, arrival: now)
    }

    /// The packet with `sequenceNumber`, if it is still held and young enough to be worth sending.
    func packet(_ sequenceNumber: UInt16, now: Duration) -> RTPPacket? {
        guard let slot = slots[Int(sequenceNumber) & mask], slot.packet.sequenceNumber == sequenceNumber,
              now - slot.arrival <= maxAge else { return nil }
        return slot.packet
    }
}
