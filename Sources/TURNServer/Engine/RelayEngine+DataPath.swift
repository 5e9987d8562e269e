import NIOCore
internal import CUDPShims
#if canImport(Glibc)
import Glibc
#endif

/// The relaying itself: a batch read from one socket, checked datagram by datagram, and sent
/// on in as few writes as the destinations allow.
extension RelayEngine {
    /// The datagrams of a batch that go to one destination, as iovecs into the receive slots.
    struct SendGroup {
        /// Index of the channel whose peer receives the group, or -1 for the client.
        var destination = -1
        var count = 0
        var bytes = 0
        var segmentSize = 0
        /// A datagram shorter than the segment size joined: it must be the last (UDP GSO).
        var closed = false
    }

    /// ChannelData from the client (RFC 8656 §12.5): relayed to the peer of a live channel;
    /// anything else goes to the NIO loop.
    func readClient(_ path: RelayPath, now: UInt64) {
        relayBatch(from: path.clientSocket, path: path) { payload, length, source, group in
            // Queued before the socket was connected: another client's datagram for the listener.
            guard PeerKey(source) == path.client else {
                forward(UnsafeRawBufferPointer(start: payload, count: length), from: source, to: path.fromClient)
                return
            }
            // RFC 8656 §12: ChannelData starts with 0b01; STUN with 0b00.
            guard length >= 4, payload.load(as: UInt8.self) & 0xC0 == 0x40 else {
                forward(UnsafeRawBufferPointer(start: payload, count: length), from: source, to: path.fromClient)
                return
            }
            let number = UInt16(payload.load(as: UInt8.self)) << 8 | UInt16(payload.load(fromByteOffset: 1, as: UInt8.self))
            let dataLength = Int(payload.load(fromByteOffset: 2, as: UInt8.self)) << 8 | Int(payload.load(fromByteOffset: 3, as: UInt8.self))
            // RFC 8656 §12.5: a datagram too short for its length field is discarded; bytes
            // after the message (padding) are ignored.
            guard 4 + dataLength <= length else { return }
            var channel = -1
            if let index = path.routes.numbers.firstIndex(of: number) {
                channel = path.routes.untils[index] > now ? index : -2
            }
            guard channel >= 0 else {
                // Unknown here or lapsed: the loop knows the rules and the counters.
                forward(UnsafeRawBufferPointer(start: payload, count: length), from: source, to: path.fromClient)
                return
            }
            if path.toPeerBudget != nil, !path.toPeerBudget!.take(dataLength, now: NIODeadline.uptimeNanoseconds(now)) {
                tally.droppedOverBandwidth += 1
                return
            }
            tally.packetsToPeer += 1
            tally.bytesToPeer += dataLength
            add(payload + 4, length: dataLength, to: channel, group: &group, path: path)
        }
    }

    /// A datagram from a peer at the relayed address (RFC 8656 §11.3): over the peer's live
    /// channel as ChannelData; with only a permission, to the NIO loop (Data indication);
    /// without one, discarded.
    func readRelay(_ path: RelayPath, now: UInt64) {
        relayBatch(from: path.relaySocket, path: path) { payload, length, source, group in
            // The ChannelData length field has 16 bits (RFC 8656 §12.4).
            guard length <= 0xFFFF else { return }
            let peer = PeerKey(source)
            var channel = -1
            if let index = path.routes.peers.firstIndex(of: peer), path.routes.untils[index] > now {
                channel = index
            }
            guard channel >= 0 else {
                if path.routes.permitted(peer.ip, now: now) {
                    forward(UnsafeRawBufferPointer(start: payload, count: length), from: source, to: path.fromPeer)
                } else {
                    tally.droppedNoPermission += 1
                }
                return
            }
            if path.toClientBudget != nil, !path.toClientBudget!.take(length, now: NIODeadline.uptimeNanoseconds(now)) {
                tally.droppedOverBandwidth += 1
                return
            }
            tally.packetsToClient += 1
            tally.bytesToClient += length
            // RFC 8656 §12.4: channel number and length in front of the data, in the headroom.
            let header = payload - 4
            let number = path.routes.numbers[channel]
            header.storeBytes(of: UInt8(number >> 8), as: UInt8.self)
            header.storeBytes(of: UInt8(number & 0xFF), toByteOffset: 1, as: UInt8.self)
            header.storeBytes(of: UInt8(length >> 8), toByteOffset: 2, as: UInt8.self)
            header.storeBytes(of: UInt8(length & 0xFF), toByteOffset: 3, as: UInt8.self)
            add(header, length: length + 4, to: -1, group: &group, path: path)
        }
    }

    /// Reads one batch from `socket` and hands each whole datagram to `relay` (its payload in
    /// the receive slot, after the headroom; its length; its sender), then writes what `relay`
    /// grouped. The one prologue of both directions; inlined, so `relay` is not a call.
    @inline(__always)
    private func relayBatch(from socket: Int32, path: RelayPath,
                            _ relay: (UnsafeMutableRawPointer, Int, UnsafeMutablePointer<sockaddr_storage>, inout SendGroup) -> Void) {
        let received = Int(CUDPShims_receive(socket, datagrams, UInt32(Self.batch)))
        guard received > 0 else { return }
        windowDatagrams &+= received
        var group = SendGroup()
        for i in 0..<received {
            let datagram = datagrams + i
            // Longer than a slot: cut short by the kernel, never relayed in part.
            guard datagram.pointee.flags & Int32(MSG_TRUNC) == 0 else { continue }
            relay(buffers + i * Self.slotSize + Self.headroom, Int(datagram.pointee.length), source(of: datagram), &group)
        }
        flush(&group, path: path)
    }

    /// Adds a datagram to the group, writing the group first when the datagram cannot join it:
    /// another destination, or (with GSO) a size that would break the segmentation.
    private func add(_ bytes: UnsafeMutableRawPointer, length: Int, to destination: Int, group: inout SendGroup, path: RelayPath) {
        if group.count > 0 {
            let joins = group.destination == destination && group.count < Self.maximumSegments
                && (!gso || (!group.closed && length <= group.segmentSize && group.segmentSize <= path.segmentLimit
                    && group.bytes + length <= DatagramOutbox.maximumBatchBytes))
            if !joins { flush(&group, path: path) }
        }
        if group.count == 0 {
            group.destination = destination
            group.segmentSize = length
            group.closed = false
        } else if length < group.segmentSize {
            group.closed = true
        }
        vectors[group.count] = iovec(iov_base: bytes, iov_len: length)
        group.count += 1
        group.bytes += length
    }

    /// Writes the group: one segmented write when GSO is on and it holds several datagrams,
    /// else one `sendmmsg`. Datagrams the socket buffer has no room for are lost, as on a
    /// congested link (UDP).
    private func flush(_ group: inout SendGroup, path: RelayPath) {
        guard group.count > 0 else { return }
        defer { group = SendGroup() }
        if group.destination < 0 {
            send(group, socket: path.clientSocket, to: nil, length: 0)
            return
        }
        var address = path.routes.addresses[group.destination]
        let length = path.routes.addressLengths[group.destination]
        withUnsafePointer(to: &address) { storage in
            storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { send(group, socket: path.relaySocket, to: $0, length: length) }
        }
    }

    private func send(_ group: SendGroup, socket: Int32, to address: UnsafePointer<sockaddr>?, length: socklen_t) {
        if gso && group.count > 1 {
            if CUDPShims_send_segmented(socket, vectors, UInt32(group.count), UInt16(group.segmentSize), address, length) >= 0 {
                tally.segmentedDatagrams += group.count
                return
            }
            let error = errno
            if error == EAGAIN || error == ENOBUFS { return }
            // A device or route that cannot segment (EIO: IPsec, no checksum offload) or a
            // segment above the path MTU: this engine sends one by one from now on; the
            // batch still goes out, unlike a refused write in NIO, which closes the socket.
            gso = false
            logger.warning("UDP segmentation offload (GSO) failed; the relay engine sends without it", metadata: ["errno": "\(error)"])
        }
        _ = CUDPShims_send_each(socket, vectors, UInt32(group.count), address, length)
    }
}
