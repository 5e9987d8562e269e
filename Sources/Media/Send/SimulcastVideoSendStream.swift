import NIOCore
import RTP
import Codecs

/// One simulcast layer a participant sends (RFC 8853): its rid, SSRC and RTX SSRC.
public struct SimulcastLayer: Hashable, Sendable {
    /// The RTP stream id (RFC 8852), as the answer's `a=rid` lines name it.
    public var rid: String
    /// The layer's SSRC.
    public var ssrc: UInt32
    /// Its RTX SSRC (RFC 4588), when RTX is negotiated.
    public var retransmissionSSRC: UInt32

    /// Creates a layer.
    public init(rid: String, ssrc: UInt32, retransmissionSSRC: UInt32) {
        self.rid = rid
        self.ssrc = ssrc
        self.retransmissionSSRC = retransmissionSSRC
    }
}

/// VP8 simulcast (RFC 8853): one picture sent as up to three independent encodings, lowest
/// first — a quarter, a half and the full size — each its own ``VideoSendStream`` (encoder,
/// SSRC, sequence numbers, RTX, key frames on request for that SSRC alone), each packet tagged
/// with the layer's rid in the RFC 8852 `rtp-stream-id` header extension (its RTX packets with
/// `repaired-rtp-stream-id`), so that a forwarder can pick one layer per receiver.
///
/// The total bitrate is split 1:2:4 from the lowest layer up (the full layer gets 4/7): a
/// layer of a quarter of the pixels gets half the bits of the next, which keeps the smaller
/// pictures sharp enough to be worth watching, as browsers' defaults do (roughly 1:3:10 at
/// 180p/360p/720p).
///
/// One libvpx encoder per layer rather than libvpx's multi-resolution encoder
/// (`vpx_codec_enc_init_multi`, present in Debian's libvpx 1.12): measured here, 640×360 down to
/// 160×90 took 62–95 ms per set of three frames with three encoders and 76–85 ms with the
/// multi-resolution one (1280×720: 281 vs 200 ms), on a loaded machine, and the latter overshot
/// its bitrates by 40 % and ties key frames of all layers together, while a forwarder asks one
/// layer for a key frame when a receiver switches to it.
public final class SimulcastVideoSendStream {
    /// The layers, lowest first, each with its stream.
    public let layers: [SimulcastLayer]
    private let streams: [VideoSendStream]
    private let ridExtensionID: UInt8?
    private let repairedRIDExtensionID: UInt8?
    /// Each layer's share of the total bitrate, lowest first.
    public static let bitrateShares: [Double] = [1.0 / 7, 2.0 / 7, 4.0 / 7]
    private var totalKbps: Int

    /// Creates the layers; the lowest gets 1/4 of the size per side, the next 1/2, the last the
    /// full size (with two layers: 1/2 and full; one layer: full).
    ///
    /// - Parameters:
    ///   - layers: 1–3 layers, lowest quality first.
    ///   - encoder: the full-size picture's settings; `bitrateKbps` is the total of all layers.
    ///   - ridExtensionID: the negotiated `rtp-stream-id` id (RFC 8852 §3.1); without it the layers carry no rid.
    /// - Throws: ``CodecError`` `.invalidArgument` for no layers or more than three, or a picture too small to divide.
    public init(layers: [SimulcastLayer], encoder: VP8Encoder.Configuration, payloadType: UInt8, retransmissionPayloadType: UInt8?,
                ridExtensionID: UInt8?, repairedRIDExtensionID: UInt8?, reservedExtensionBytes: Int,
                random: inout some RandomNumberGenerator) throws {
        guard (1...3).contains(layers.count) else {
            throw CodecError(.invalidArgument, "simulcast takes 1–3 layers, got \(layers.count)")
        }
        self.layers = layers
        self.ridExtensionID = ridExtensionID
        self.repairedRIDExtensionID = repairedRIDExtensionID
        totalKbps = encoder.bitrateKbps
        let shares = Self.shares(count: layers.count)
        var streams: [VideoSendStream] = []
        for (index, layer) in layers.enumerated() {
            let divisor = 1 << (layers.count - 1 - index)
            var configuration = encoder
            configuration.width = (encoder.width + divisor - 1) / divisor
            configuration.height = (encoder.height + divisor - 1) / divisor
            configuration.bitrateKbps = max(1, Int(Double(encoder.bitrateKbps) * shares[index]))
            let rtx: RetransmissionHistory.Mode = if let retransmissionPayloadType {
                .rtx(payloadType: retransmissionPayloadType, ssrc: layer.retransmissionSSRC, firstSequenceNumber: .random(in: 0...UInt16.max, using: &random))
            } else { .plain }
            // Room for the rid element (1 + up to 16 bytes) besides what the caller adds.
            streams.append(try VideoSendStream(
                encoder: configuration, payloadType: payloadType, ssrc: layer.ssrc, retransmission: rtx,
                firstSequenceNumber: .random(in: 0...UInt16.max, using: &random),
                reservedExtensionBytes: reservedExtensionBytes + (ridExtensionID == nil ? 0 : 20)))
        }
        self.streams = streams
    }

    /// The shares of `count` layers, lowest first, summing to 1.
    static func shares(count: Int) -> [Double] {
        let weights = (0..<count).map { Double(1 << $0) }
        let sum = weights.reduce(0, +)
        return weights.map { $0 / sum }
    }

    /// The encoders, lowest layer first (their sizes and current bitrates).
    public var encoders: [VP8Encoder] { streams.map(\.encoder) }

    /// Each layer's counters, lowest first.
    public var layerCounters: [VideoSendStream.Counters] { streams.map(\.counters) }

    /// Encodes `picture` (full size) at each layer's size and returns all layers' packets.
    public func send(_ picture: VideoFrame, timestamp: UInt32, now: Duration) throws -> [RTPPacket] {
        var packets: [RTPPacket] = []
        var scaled = picture
        for index in streams.indices.reversed() {
            if index < streams.count - 1 { scaled = try scaled.halved() }
            packets += tag(try streams[index].send(scaled, timestamp: timestamp, now: now), layer: index, repaired: false)
        }
        return packets
    }

    /// Handles RTCP from the receiver: each layer takes the NACKs, PLIs and FIRs of its own SSRC
    /// (a forwarder asks one layer for a key frame), all of them the receiver reports.
    public func handle(_ feedback: RTCPPacket, now: Duration) -> [RTPPacket] {
        var packets: [RTPPacket] = []
        for index in streams.indices {
            packets += tag(streams[index].handle(feedback, now: now), layer: index, repaired: true)
        }
        return packets
    }

    /// Makes every layer's next frame a key frame.
    public func requestKeyframe() {
        for stream in streams { stream.encoder.requestKeyframe() }
    }

    /// The total bitrate of all layers, in kb/s.
    public var totalBitrateKbps: Int { totalKbps }

    /// Splits a new total bitrate over the layers (1:2:4).
    public func setTotalBitrate(kbps: Int) throws {
        let shares = Self.shares(count: streams.count)
        for (index, stream) in streams.enumerated() {
            try stream.encoder.setBitrate(kbps: max(1, min(Int(Double(kbps) * shares[index]), VP8Encoder.maximumBitrateKbps)))
        }
        totalKbps = kbps
    }

    /// The sum of the layers' counters.
    public var counters: VideoSendStream.Counters {
        streams.reduce(into: VideoSendStream.Counters()) { sum, stream in
            let counters = stream.counters
            sum.frames += counters.frames
            sum.keyframes += counters.keyframes
            sum.packets += counters.packets
            sum.bytes += counters.bytes
            sum.retransmissions += counters.retransmissions
            sum.keyframeRequests += counters.keyframeRequests
            sum.nacksReceived += counters.nacksReceived
        }
    }

    /// The round-trip time measured by any layer.
    public var measuredRoundTripTime: Duration? { streams.lazy.compactMap(\.measuredRoundTripTime).first }

    /// A sender report per layer that sent anything (RFC 3550 §6.4.1).
    public func senderReports(now: Duration) -> [RTCPPacket] {
        streams.filter { $0.counters.packets > 0 }.map { $0.senderReport(now: now) }
    }

    /// Writes the layer's rid into each packet (RFC 8852 §3): `rtp-stream-id` on media,
    /// `repaired-rtp-stream-id` on RTX (an RTX packet's SSRC is not the layer's).
    private func tag(_ packets: [RTPPacket], layer: Int, repaired: Bool) -> [RTPPacket] {
        guard let mediaID = ridExtensionID else { return packets }
        let rid = ByteBuffer(string: layers[layer].rid)
        return packets.map { packet in
            var tagged = packet
            let isRepair = repaired && packet.ssrc != layers[layer].ssrc
            guard let id = isRepair ? repairedRIDExtensionID : mediaID else { return packet }
            tagged.headerExtension = .compact((packet.headerExtension?.elements ?? []) + [RTPHeaderExtensionElement(id: id, data: rid)])
            return tagged
        }
    }
}
