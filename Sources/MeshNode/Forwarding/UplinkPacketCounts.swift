import Media
import NIOCore
import RTP

/// What arrived on each SSRC of one participant's uplink, for the forwarder's log: media,
/// retransmissions and padding-only packets apart, and those without a transport-wide sequence
/// number (which the transport-cc feedback cannot acknowledge). A sender's bandwidth probes
/// and padding (RTX payloads or padding-only packets, RFC 4588 §4, RFC 3550 §5.1) show here,
/// so an operator can tell "the sender never probed" from "its probes were not acknowledged"
/// (docs/rooms.md "Chromium's top layer").
struct UplinkPacketCounts: CustomStringConvertible {
    /// One SSRC's counts and the rid it carried (`rid` or, for RTX, `rrid`, RFC 8852 §3).
    struct Stream {
        var label = ""
        var packets = 0
        var paddingOnly = 0
        var withoutSequence = 0
        var bytes = 0
    }

    private(set) var streams: [UInt32: Stream] = [:]
    /// Packets on SSRCs past the bound, counted but not told apart.
    private(set) var others = 0
    /// SSRCs are outside input: a flood of made-up ones costs at most this many entries.
    static let maxStreams = 16

    /// Counts `packet`; `kind` is the core's kind for its SSRC (nil for RTX and foreign SSRCs).
    mutating func count(_ packet: RTPPacket, bytes: Int, extensions: ForwardingExtensionIDs, kind: String?) {
        if streams[packet.ssrc] == nil {
            guard streams.count < Self.maxStreams else { others += 1; return }
            streams[packet.ssrc] = Stream()
        }
        var stream = streams[packet.ssrc]!
        if stream.label.isEmpty {
            if let label = Self.rid(of: packet, id: extensions.rtpStreamID) {
                stream.label = "rid \(label)"
            } else if let label = Self.rid(of: packet, id: extensions.repairedRTPStreamID) {
                stream.label = "rtx \(label)"
            } else if let kind {
                stream.label = kind
            }
        }
        stream.packets += 1
        stream.bytes += bytes
        if packet.paddingLength > 0 && packet.payload.readableBytes == 0 { stream.paddingOnly += 1 }
        if let id = extensions.transportWideCC, packet.headerExtension?.element(id: id) == nil { stream.withoutSequence += 1 }
        streams[packet.ssrc] = stream
    }

    private static func rid(of packet: RTPPacket, id: UInt8?) -> String? {
        guard let id, let data = packet.headerExtension?.element(id: id) else { return nil }
        return data.getString(at: data.readerIndex, length: data.readableBytes)
    }

    /// One entry per SSRC, e.g. `1234 (rid q, pt 96): 310 packets, 0 padding-only, 0 without a sequence number`.
    var description: String {
        let parts = streams.sorted { $0.key < $1.key }.map { ssrc, stream in
            "\(ssrc) (\(stream.label.isEmpty ? "?" : stream.label)): \(stream.packets) packets \(stream.bytes * 8 / 1000) kbit, \(stream.paddingOnly) padding-only, \(stream.withoutSequence) without transport-cc seq"
        }
        return (parts + (others > 0 ? ["\(others) on other SSRCs"] : [])).joined(separator: "; ")
    }
}
