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
    /// Where ``expire(now:slots:)`` goes on.
    private var sweep = 0
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

    /// Frees the packets older than `maxAge` among the next `count` slots, going round the ring
    /// from where the last call stopped. A cached packet holds its whole received datagram, and a
    /// ring sized for a fast stream would otherwise keep `capacity` of them long after they are
    /// too old to send: called every tick, it keeps about `maxAge` of each stream instead (at
    /// 40 packets a second, some 60 of 512 slots).
    mutating func expire(now: Duration, slots count: Int) {
        for _ in 0..<min(count, slots.count) {
            if let slot = slots[sweep], now - slot.arrival > maxAge { slots[sweep] = nil }
            sweep = (sweep + 1) & mask
        }
    }

    /// How many packets the cache holds now (young or not yet expired).
    var heldPackets: Int { slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// The packet with `sequenceNumber`, if it is still held and young enough to be worth sending.
    func packet(_ sequenceNumber: UInt16, now: Duration) -> RTPPacket? {
        guard let slot = slots[Int(sequenceNumber) & mask], slot.packet.sequenceNumber == sequenceNumber,
              now - slot.arrival <= maxAge else { return nil }
        return slot.packet
    }
}
