import NIOCore

/// The relayed datagrams one socket sends to one destination during an event-loop turn,
/// coalesced for UDP generic segmentation offload (GSO, Linux `UDP_SEGMENT`).
///
/// Consecutive datagrams of one size to one destination go into one buffer that is written
/// once with a segment size: the kernel takes it through the IP stack as one packet and cuts
/// it into the original datagrams only at the device (or, on loopback, at the receiving
/// socket). Per datagram that saves the route lookup, netfilter, queueing and a NIO write; the
/// receiver sees the same datagrams as before. A shorter datagram may end a batch (the last
/// segment may be short); a longer one, another destination, or a full batch starts a new one.
/// Order is kept: a batch is written before the next one starts.
///
/// A lone datagram is written as it came, without a copy (client → peer data stays a slice
/// of the listener's receive buffer). The outbox is emptied at the end of every turn
/// (``TURNLoop/flushPending()``), so it never holds more than one turn's reads.
final class DatagramOutbox {
    /// The kernel's `UDP_MAX_SEGMENTS` is 64 before Linux 6.x (128 after).
    static let maximumSegments = 64
    /// A GSO write is one IP datagram: it must stay below 64 KiB with headers.
    static let maximumBatchBytes = 60_000
    /// Larger datagrams are never batched. The kernel refuses a segmented write (EINVAL or
    /// EMSGSIZE) whose segment with its headers exceeds the path MTU, where a plain datagram
    /// would be fragmented, and a refused write closes the socket in NIO. The path MTU to a
    /// destination can be lowered by anyone who can send an ICMP "fragmentation needed", down
    /// to the kernel's floor: 552 bytes for IPv4 (`net.ipv4.route.min_pmtu`), 1280 for IPv6
    /// (RFC 8200 §5). Segments that fit the floor with their headers (28 and 48 bytes) cannot be
    /// refused that way: audio and small video packets.
    static let maximumSegmentSizeIPv4 = 524
    static let maximumSegmentSizeIPv6 = 1232

    let channel: Channel
    /// Called (on the loop) when the kernel refused a segmented write, so the loop stops
    /// using GSO: that batch is lost, later datagrams go one by one.
    private let gsoFailed: (Error) -> Void
    /// Whether the loop holds this outbox in its list to empty at the end of the turn.
    var scheduled = false
    private var destination: SocketAddress?
    private var pending: ByteBuffer?
    /// Whether `pending` is a buffer of ours that more segments may be appended to.
    private var owned = false
    private var segmentSize = 0
    /// The largest segment the destination's family allows (``maximumSegmentSizeIPv4``).
    private var segmentLimit = 0
    private var count = 0
    /// A segment shorter than ``segmentSize`` was added: it must be the last one.
    private var closed = false
    /// Datagrams written in segmented (GSO) writes since the loop last counted them.
    var segmented = 0

    init(channel: Channel, gsoFailed: @escaping (Error) -> Void) {
        self.channel = channel
        self.gsoFailed = gsoFailed
    }

    /// Queues a finished datagram (relayed data or a Data indication).
    func add(_ datagram: ByteBuffer, to destination: SocketAddress, gso: Bool) {
        var datagram = datagram
        let length = datagram.readableBytes
        if gso, extend(length: length, to: destination) {
            pending!.writeBuffer(&datagram)
            return
        }
        emit()
        start(destination)
        pending = datagram
        owned = false
        segmentSize = length
        count = 1
        closed = false
    }

    /// Queues a ChannelData message (RFC 8656 §12.4) carrying `data`, unpadded (UDP).
    func addChannelData(channel number: UInt16, data: ByteBuffer, to destination: SocketAddress, gso: Bool) {
        let length = 4 + data.readableBytes
        if gso, extend(length: length, to: destination) {
            pending!.writeMultipleIntegers(number, UInt16(data.readableBytes))
            pending!.writeImmutableBuffer(data)
            return
        }
        emit()
        var buffer = channel.allocator.buffer(capacity: length)
        buffer.writeMultipleIntegers(number, UInt16(data.readableBytes))
        buffer.writeImmutableBuffer(data)
        start(destination)
        pending = buffer
        owned = true
        segmentSize = length
        count = 1
        closed = false
    }

    private func start(_ destination: SocketAddress) {
        self.destination = destination
        if case .v6 = destination {
            segmentLimit = Self.maximumSegmentSizeIPv6
        } else {
            segmentLimit = Self.maximumSegmentSizeIPv4
        }
    }

    /// Makes room for one more segment of `length` bytes, or says it cannot join the batch.
    private func extend(length: Int, to destination: SocketAddress) -> Bool {
        guard count > 0, !closed, length <= segmentSize, segmentSize <= segmentLimit,
              count < Self.maximumSegments, pending!.readableBytes + length <= Self.maximumBatchBytes,
              destination == self.destination else { return false }
        if !owned {
            // The second segment: copy the first out of the buffer it was read into.
            var batch = channel.allocator.buffer(capacity: segmentSize * 16)
            batch.writeImmutableBuffer(pending!)
            pending = batch
            owned = true
        } else if count == 1 {
            pending!.reserveCapacity(minimumWritableBytes: segmentSize * 15)
        }
        count += 1
        if length < segmentSize { closed = true }
        return true
    }

    /// Writes what is queued (without a flush).
    func emit() {
        guard let data = pending, let destination else { return }
        pending = nil
        self.destination = nil
        if count > 1 {
            let metadata = AddressedEnvelope<ByteBuffer>.Metadata(ecnState: .transportNotCapable, packetInfo: nil,
                                                                   segmentSize: segmentSize)
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.assumeIsolated().whenFailure { [gsoFailed] error in gsoFailed(error) }
            channel.write(AddressedEnvelope(remoteAddress: destination, data: data, metadata: metadata), promise: promise)
            segmented += count
        } else {
            channel.write(AddressedEnvelope(remoteAddress: destination, data: data), promise: nil)
        }
        count = 0
    }
}
