import NIOCore
import RTP

/// Simulcast in the forwarder (docs/rooms.md "Simulcast and layer choice"): a source's layers
/// feed one outgoing stream per receiver, the layer picked from that receiver's bandwidth
/// estimate, switched only at a key frame of the new layer, with sequence numbers, timestamps and
/// the VP8 picture id and TL0PICIDX kept continuous across the switch (RFC 7741 §4.2).
extension SelectiveForwarder {
    /// A simulcast source: its layers' SSRCs as learned from their rids, and what each layer sends.
    struct SimulcastSource: Sendable {
        var description: ForwardedSource
        /// Per layer (0 the lowest): the media and RTX SSRCs, once a packet named them.
        var ssrcs: [UInt32?]
        var repairs: [UInt32?]
        /// What each layer sent over the last second, which the layer choice weighs against the estimate.
        var rates: [BitrateMeter]

        init(description: ForwardedSource) {
            self.description = description
            let count = description.simulcastRIDs.count
            ssrcs = Array(repeating: nil, count: count)
            repairs = Array(repeating: nil, count: count)
            rates = Array(repeating: BitrateMeter(window: .seconds(1)), count: count)
        }
    }

    /// How one source packet maps onto an outgoing stream.
    struct LayerMapping: Sendable {
        var ssrc: UInt32
        var sequenceDelta: UInt16
        var timestampDelta: UInt32
        var pictureIDDelta: UInt16
        var tl0Delta: UInt8
    }

    /// An outgoing stream fed by a simulcast source: the layer now and the one wanted.
    struct OutgoingLayers: Sendable {
        /// The layer the receiver's estimate allows; a switch to it waits for its key frame.
        var target: Int
        /// The layer that feeds the stream, from the key frame at `switchSequence` on.
        var layer: Int?
        var feedingSSRC: UInt32?
        var switchSequence: UInt16 = 0
        /// The outgoing sequence number of that key frame's first packet: NACKs below it belong to `previous`.
        var firstOutgoing: UInt16 = 0
        /// The layer before the last switch, for retransmissions of what it sent.
        var previous: LayerMapping?
        /// Added to the VP8 picture id (15 bits) and TL0PICIDX so they run on across a switch (RFC 7741 §4.2).
        var pictureIDDelta: UInt16 = 0
        var tl0Delta: UInt8 = 0
        /// The last packet sent, outgoing values: where the next layer's numbers continue.
        var lastSequence: UInt16?
        var lastTimestamp: UInt32 = 0
        var lastPictureID: UInt16?
        var lastTL0: UInt8?
        var lastSentAt: Duration = .zero
        /// Since when the estimate has allowed a higher layer than `target`.
        var upSince: Duration?
        var switches = 0
        /// The receiver's budget leaves this video out for now (docs/rooms.md "A squeezed receiver").
        var paused = false

        init(target: Int) {
            self.target = target
        }
    }

    /// The layers the forwarder sends `receiver`, one entry per simulcast source it receives.
    public func layerStates(to receiver: String) -> [ForwardedLayerState] {
        guard let participant = participants[receiver] else { return [] }
        return participant.outgoing.values.compactMap { stream -> ForwardedLayerState? in
            guard let layers = stream.simulcast, let source = participants[stream.from]?.simulcast[stream.sourceSSRC] else { return nil }
            return ForwardedLayerState(
                receiver: receiver, sender: stream.from, layer: layers.layer, target: layers.target,
                rid: layers.layer.map { source.description.simulcastRIDs[$0] }, estimate: participant.estimator.targetBitrate,
                switches: layers.switches, paused: layers.paused)
        }
        .sorted { $0.sender < $1.sender }
    }

    /// The first packet of a layer's SSRC: its `rtp-stream-id` (or, for RTX, `repaired-rtp-stream-id`,
    /// RFC 8852 §3) must name a rid the participant declared, for a layer not yet bound to another SSRC.
    /// Returns whether the SSRC is now known; `false` when the packet carries no rid.
    /// - Throws: ``MediaError`` `.forbidden` for a rid not declared (not offered), a second SSRC for a
    ///   layer, another payload type; `.conflict` for an SSRC another stream of the call uses.
    mutating func learnLayer(from packet: RTPPacket, of id: String, now: Duration) throws(MediaError) -> Bool {
        let ids = participants[id]!.extensions
        if let extensionID = ids.repairedRTPStreamID, let rid = packet.headerExtension?.element(id: extensionID).flatMap(Self.rid) {
            guard let (key, layer) = layer(named: rid, of: id) else {
                throw MediaError(.forbidden, "\(id) sent RTX for rid '\(rid)', which it did not declare (the forwarder offered \(declaredRIDs(of: id)))")
            }
            let source = participants[id]!.simulcast[key]!
            guard let mediaSSRC = source.ssrcs[layer] else {
                throw MediaError(.forbidden, "\(id) sent RTX for rid '\(rid)' before any media of that layer")
            }
            guard source.repairs[layer] == nil else {
                throw MediaError(.forbidden, "\(id) sent RTX for rid '\(rid)' with SSRC \(packet.ssrc); that layer's RTX is SSRC \(source.repairs[layer]!)")
            }
            guard let payloadType = source.description.simulcastRetransmissionPayloadType, packet.payloadType == payloadType else {
                throw MediaError(.forbidden, "\(id) sent RTX payload type \(packet.payloadType) for rid '\(rid)', which negotiated no such RTX")
            }
            try claim(packet.ssrc, for: id)
            participants[id]!.simulcast[key]!.repairs[layer] = packet.ssrc
            participants[id]!.repairs[packet.ssrc] = mediaSSRC
            participants[id]!.sources[mediaSSRC]!.description.retransmission = .init(payloadType: payloadType, ssrc: packet.ssrc)
            return true
        }
        guard let extensionID = ids.rtpStreamID, let rid = packet.headerExtension?.element(id: extensionID).flatMap(Self.rid) else { return false }
        guard let (key, layer) = layer(named: rid, of: id) else {
            throw MediaError(.forbidden, "\(id) sent rid '\(rid)', which it did not declare (the forwarder offered \(declaredRIDs(of: id)))")
        }
        let source = participants[id]!.simulcast[key]!
        guard source.ssrcs[layer] == nil else {
            throw MediaError(.forbidden, "\(id) sent rid '\(rid)' with SSRC \(packet.ssrc); that layer is SSRC \(source.ssrcs[layer]!)")
        }
        guard packet.payloadType == source.description.payloadType else {
            throw MediaError(.forbidden, "\(id) sent payload type \(packet.payloadType) for rid '\(rid)', declared \(source.description.payloadType)")
        }
        try claim(packet.ssrc, for: id)
        participants[id]!.simulcast[key]!.ssrcs[layer] = packet.ssrc
        participants[id]!.sources[packet.ssrc] = SourceStream(
            description: ForwardedSource(kind: .video, ssrc: packet.ssrc, payloadType: packet.payloadType), layerOf: (key, layer),
            cache: ForwardingPacketCache(capacity: configuration.videoCacheCapacity, maxAge: configuration.cacheMaxAge))
        return true
    }

    private mutating func claim(_ ssrc: UInt32, for id: String) throws(MediaError) {
        guard !usedSSRCs.contains(ssrc) else {
            throw MediaError(.conflict, "\(id) sent a simulcast layer with SSRC \(ssrc), which another stream of the call uses (RFC 3550 §8)")
        }
        usedSSRCs.insert(ssrc)
        sourceOwners[ssrc] = id
    }

    private func layer(named rid: String, of id: String) -> (key: UInt32, layer: Int)? {
        for (key, source) in participants[id]!.simulcast {
            if let index = source.description.simulcastRIDs.firstIndex(of: rid) { return (key, index) }
        }
        return nil
    }

    private func declaredRIDs(of id: String) -> [String] {
        participants[id]!.simulcast.values.flatMap(\.description.simulcastRIDs)
    }

    static func rid(_ data: ByteBuffer) -> String? {
        guard let text = data.getString(at: data.readerIndex, length: data.readableBytes), !text.isEmpty else { return nil }
        return text
    }

    /// The VP8 descriptor of a layer's packet, and whether the packet starts a key frame: the
    /// descriptor's S bit with partition 0, then the payload header's P bit clear (RFC 7741 §4.2, §4.3).
    static func vp8Start(of packet: RTPPacket) -> (descriptor: VP8PayloadDescriptor, keyFrameStart: Bool)? {
        var payload = packet.payload
        guard let descriptor = try? VP8PayloadDescriptor(reading: &payload) else { return nil }
        let keyFrame = descriptor.startsFrame && (payload.getInteger(at: payload.readerIndex, as: UInt8.self).map { $0 & 0x01 == 0 } ?? false)
        return (descriptor, keyFrame)
    }

    /// Whether a packet of `layer` goes to this receiver's stream: yes when that layer feeds it;
    /// when it is the target layer and the packet starts a key frame, the stream switches here,
    /// its numbers continuing from the last packet sent (RFC 7741 §4.2: the picture id grows by one
    /// per picture, TL0PICIDX by one per base-layer picture).
    mutating func admitLayerPacket(_ packet: RTPPacket, layer: Int, vp8: (descriptor: VP8PayloadDescriptor, keyFrameStart: Bool)?,
                                   receiver: String, outgoingSSRC: UInt32, now: Duration) -> Bool {
        var stream = participants[receiver]!.outgoing[outgoingSSRC]!
        guard var layers = stream.simulcast, !layers.paused else { return false }
        if layers.layer == layer, layers.feedingSSRC == packet.ssrc {
            // A late packet from before the switch would take a number already used.
            guard Int16(bitPattern: packet.sequenceNumber &- layers.switchSequence) >= 0 else { return false }
        } else {
            guard layer == layers.target, let vp8, vp8.keyFrameStart else { return false }
            if let last = layers.lastSequence {
                if let feeding = layers.feedingSSRC {
                    layers.previous = LayerMapping(ssrc: feeding, sequenceDelta: stream.sequenceDelta, timestampDelta: stream.timestampDelta,
                                                   pictureIDDelta: layers.pictureIDDelta, tl0Delta: layers.tl0Delta)
                }
                stream.sequenceDelta = last &+ 1 &- packet.sequenceNumber
                // The new layer's clock may start anywhere (RFC 3550 §5.1); the picture comes as much later as it did.
                let elapsed = UInt32(clamping: max(1, Int(((now - layers.lastSentAt).seconds * 90_000).rounded())))
                stream.timestampDelta = layers.lastTimestamp &+ elapsed &- packet.timestamp
                if let pictureID = vp8.descriptor.pictureID, let lastPictureID = layers.lastPictureID {
                    let mask: UInt16 = vp8.descriptor.longPictureID ? 0x7FFF : 0x7F
                    layers.pictureIDDelta = (lastPictureID &+ 1 &- pictureID) & mask
                }
                if let tl0 = vp8.descriptor.tl0PictureIndex, let lastTL0 = layers.lastTL0 {
                    layers.tl0Delta = lastTL0 &+ 1 &- tl0
                }
            }
            if let old = layers.layer {
                counters.layerSwitches += 1
                if layer < old { counters.layerSwitchesDown += 1 }
                layers.switches += 1
            }
            layers.layer = layer
            layers.feedingSSRC = packet.ssrc
            layers.switchSequence = packet.sequenceNumber
            layers.firstOutgoing = packet.sequenceNumber &+ stream.sequenceDelta
        }
        let outgoingSequence = packet.sequenceNumber &+ stream.sequenceDelta
        if layers.lastSequence.map({ Int16(bitPattern: outgoingSequence &- $0) > 0 }) ?? true {
            layers.lastSequence = outgoingSequence
            layers.lastTimestamp = packet.timestamp &+ stream.timestampDelta
            layers.lastSentAt = now
            if let descriptor = vp8?.descriptor {
                let mask: UInt16 = descriptor.longPictureID ? 0x7FFF : 0x7F
                if let pictureID = descriptor.pictureID { layers.lastPictureID = (pictureID &+ layers.pictureIDDelta) & mask }
                if let tl0 = descriptor.tl0PictureIndex { layers.lastTL0 = tl0 &+ layers.tl0Delta }
            }
        }
        stream.simulcast = layers
        participants[receiver]!.outgoing[outgoingSSRC] = stream
        return true
    }

    /// Where a NACKed outgoing number came from: the layer feeding the stream, or the one before
    /// the last switch for numbers below the switch.
    static func mapping(of outgoingSequence: UInt16, in stream: OutgoingStream) -> LayerMapping? {
        guard let layers = stream.simulcast else {
            return LayerMapping(ssrc: stream.sourceSSRC, sequenceDelta: stream.sequenceDelta, timestampDelta: stream.timestampDelta, pictureIDDelta: 0, tl0Delta: 0)
        }
        guard let feeding = layers.feedingSSRC else { return nil }
        if let previous = layers.previous, Int16(bitPattern: outgoingSequence &- layers.firstOutgoing) < 0 { return previous }
        return LayerMapping(ssrc: feeding, sequenceDelta: stream.sequenceDelta, timestampDelta: stream.timestampDelta,
                            pictureIDDelta: layers.pictureIDDelta, tl0Delta: layers.tl0Delta)
    }

    /// The payload with its VP8 picture id and TL0PICIDX shifted (RFC 7741 §4.2), in place in a
    /// copy of the payload; the payload itself when there is nothing to shift.
    static func rewritePictureIDs(_ payload: ByteBuffer, pictureIDDelta: UInt16, tl0Delta: UInt8) -> ByteBuffer {
        guard pictureIDDelta != 0 || tl0Delta != 0 else { return payload }
        let start = payload.readerIndex
        guard let first = payload.getInteger(at: start, as: UInt8.self), first & 0x80 != 0,
              let extended = payload.getInteger(at: start + 1, as: UInt8.self) else { return payload }
        var copy = payload
        var offset = start + 2
        if extended & 0x80 != 0, let high = payload.getInteger(at: offset, as: UInt8.self) {
            if high & 0x80 != 0, let long = payload.getInteger(at: offset, as: UInt16.self) {
                copy.setInteger(0x8000 | ((long & 0x7FFF) &+ pictureIDDelta) & 0x7FFF, at: offset)
                offset += 2
            } else {
                copy.setInteger(UInt8(truncatingIfNeeded: (UInt16(high) &+ pictureIDDelta) & 0x7F), at: offset)
                offset += 1
            }
        }
        if extended & 0x40 != 0, let tl0 = payload.getInteger(at: offset, as: UInt8.self) {
            copy.setInteger(tl0 &+ tl0Delta, at: offset)
        }
        return copy
    }
}

extension SelectiveForwarder.Participant {
    /// What the participant sends that is forwarded as one stream each: single streams, and each
    /// simulcast source once (its description's SSRC is its key).
    var forwardedSources: [ForwardedSource] {
        sources.values.filter { $0.layerOf == nil }.map(\.description) + simulcast.values.map(\.description)
    }
}

extension SelectiveForwarder {
    /// The kind of `participant`'s media stream `ssrc`: a declared stream, or a simulcast layer
    /// once its first packet named its rid; `nil` for an RTX stream or an SSRC it does not send.
    /// The session layer reports on exactly these in its receiver reports (RFC 3550 §6.4.2): a
    /// browser stops writing the rid once a report acknowledged the layer's SSRC.
    public func sourceKind(of ssrc: UInt32, from participant: String) -> ForwardedSource.Kind? {
        participants[participant]?.sources[ssrc]?.description.kind
    }
}

extension SelectiveForwarder {
    /// A receiver's bandwidth estimate now, in bits per second, and its parts: the delay-based
    /// one (from transport-cc feedback), the loss-based one (receiver reports), and what the
    /// receiver acknowledged over the last half second; `nil` for an unknown receiver.
    public func estimate(of receiver: String) -> (target: Double, delayBased: Double, lossBased: Double, acknowledged: Double?)? {
        guard let estimator = participants[receiver]?.estimator else { return nil }
        return (estimator.targetBitrate, estimator.delayBasedBitrate, estimator.lossBasedBitrate, estimator.acknowledgedBitrate)
    }
}

extension SelectiveForwarder {
    /// The rids of `participant`'s simulcast video, lowest quality first (empty without simulcast).
    public func simulcastRIDs(of participant: String) -> [String] {
        participants[participant].map { $0.simulcast.values.flatMap(\.description.simulcastRIDs) } ?? []
    }
}
