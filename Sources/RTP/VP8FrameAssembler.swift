import NIOCore

/// Rebuilds VP8 frames from RTP packets that may arrive late, twice or out of order (RFC 7741 §4.5).
///
/// Frames come out in sequence order. A frame that follows a gap which has not been filled is held
/// back until the missing packets arrive (for instance through NACK retransmission), or until a
/// complete keyframe later in the stream makes the gap irrelevant; ``missingSequenceNumbers`` lists
/// what to NACK, and ``skipGap()`` gives up on a gap when the caller decides it cannot be filled.
public struct VP8FrameAssembler: Sendable {
    /// A reassembled frame.
    public struct Frame: Hashable, Sendable {
        /// The VP8 bitstream of the frame, without payload descriptors.
        public var data: ByteBuffer
        /// The RTP timestamp (90 kHz).
        public var timestamp: UInt32
        /// The picture ID from the payload descriptor, if the sender included one.
        public var pictureID: UInt16?
        /// Whether the frame is a keyframe (RFC 7741 §4.3: P bit 0 in the VP8 payload header).
        public var isKeyframe: Bool
        /// Whether packets before this frame were given up on, so the decoder's references may be stale.
        public var followsGap: Bool
        /// Sequence numbers of the first and last packet.
        public var firstSequenceNumber: UInt16
        public var lastSequenceNumber: UInt16
    }

    private struct Stored: Sendable {
        var packet: RTPPacket
        var descriptor: VP8PayloadDescriptor
        var data: ByteBuffer
    }

    /// Packets are dropped, oldest first, beyond this many.
    public let capacity: Int
    private var packets: [Int64: Stored] = [:]
    private var highest: Int64?
    private var lastDelivered: Int64?
    private var skipping = false

    /// Creates an assembler that holds at most `capacity` packets.
    public init(capacity: Int = 1024) {
        self.capacity = capacity
    }

    /// Adds a packet and returns the frames it completes, in order.
    ///
    /// - Throws: ``RTPError`` if the payload descriptor is malformed; the packet is then ignored.
    public mutating func insert(_ packet: RTPPacket) throws(RTPError) -> [Frame] {
        var data = packet.payload
        let descriptor = try VP8PayloadDescriptor(reading: &data)
        let sequence = unwrap(packet.sequenceNumber)
        if let lastDelivered, sequence <= lastDelivered { return [] }
        packets[sequence] = Stored(packet: packet, descriptor: descriptor, data: data)
        if packets.count > capacity, let oldest = packets.keys.min() {
            packets[oldest] = nil
        }
        return drain()
    }

    /// Sequence numbers between the last delivered frame and the newest packet that have not arrived,
    /// at most ``capacity`` of the newest.
    public var missingSequenceNumbers: [UInt16] {
        guard let highest, let first = lastDelivered.map({ $0 + 1 }) ?? packets.keys.min() else { return [] }
        // A sequence number far ahead (a burst of loss or a hostile sender) must not produce a huge list.
        let start = max(first, highest - Int64(capacity) + 1)
        guard start <= highest else { return [] }
        return (start...highest).filter { packets[$0] == nil }.map { UInt16(truncatingIfNeeded: $0) }
    }

    /// Whether no frame has been delivered yet or a gap was skipped: the decoder needs a keyframe.
    public var needsKeyframe: Bool { lastDelivered == nil || skipping }

    /// Gives up on the current gap: the next complete frame is delivered even if it is not a keyframe,
    /// marked with ``Frame/followsGap``.
    public mutating func skipGap() -> [Frame] {
        guard let next = nextCompleteFrame(from: (lastDelivered ?? Int64.min) + 1, keyframesOnly: false) else { return [] }
        var frames = [deliver(next, followsGap: true)]
        frames += drain()
        return frames
    }

    private mutating func unwrap(_ sequence: UInt16) -> Int64 {
        guard let highest else {
            // Start far from zero so that early wrap-backs stay positive.
            let value = Int64(sequence) + (1 << 32)
            self.highest = value
            return value
        }
        let delta = Int64(Int16(bitPattern: sequence &- UInt16(truncatingIfNeeded: highest)))
        let value = highest + delta
        if value > highest { self.highest = value }
        return value
    }

    private mutating func drain() -> [Frame] {
        var frames: [Frame] = []
        while true {
            if let lastDelivered, let range = completeFrame(startingAt: lastDelivered + 1) {
                frames.append(deliver(range, followsGap: false))
                continue
            }
            if let range = nextCompleteFrame(from: (lastDelivered ?? Int64.min) + 1, keyframesOnly: true) {
                frames.append(deliver(range, followsGap: lastDelivered != nil && range.lowerBound != lastDelivered! + 1))
                continue
            }
            return frames
        }
    }

    /// The packets of a whole frame that starts at `start`, if all are present.
    private func completeFrame(startingAt start: Int64) -> ClosedRange<Int64>? {
        guard let first = packets[start], first.descriptor.startsFrame else { return nil }
        var sequence = start
        while let stored = packets[sequence], stored.packet.timestamp == first.packet.timestamp {
            if stored.packet.marker { return start...sequence }
            sequence += 1
            if sequence != start, packets[sequence]?.descriptor.startsFrame == true { return nil }
        }
        return nil
    }

    private func nextCompleteFrame(from start: Int64, keyframesOnly: Bool) -> ClosedRange<Int64>? {
        for sequence in packets.keys.sorted() where sequence >= start {
            guard let stored = packets[sequence], stored.descriptor.startsFrame else { continue }
            if keyframesOnly && !Self.isKeyframe(stored.data) { continue }
            if let range = completeFrame(startingAt: sequence) { return range }
        }
        return nil
    }

    private static func isKeyframe(_ data: ByteBuffer) -> Bool {
        guard let header = data.getInteger(at: data.readerIndex, as: UInt8.self) else { return false }
        return header & 0x01 == 0
    }

    private mutating func deliver(_ range: ClosedRange<Int64>, followsGap: Bool) -> Frame {
        var data = ByteBuffer()
        for sequence in range {
            guard var fragment = packets[sequence]?.data else { continue }
            data.writeBuffer(&fragment)
        }
        let first = packets[range.lowerBound]
        let frame = Frame(
            data: data, timestamp: first?.packet.timestamp ?? 0, pictureID: first?.descriptor.pictureID,
            isKeyframe: first.map { Self.isKeyframe($0.data) } ?? false, followsGap: followsGap,
            firstSequenceNumber: UInt16(truncatingIfNeeded: range.lowerBound),
            lastSequenceNumber: UInt16(truncatingIfNeeded: range.upperBound))
        for sequence in packets.keys where sequence <= range.upperBound { packets[sequence] = nil }
        lastDelivered = range.upperBound
        if frame.isKeyframe { skipping = false } else if followsGap { skipping = true }
        return frame
    }
}
