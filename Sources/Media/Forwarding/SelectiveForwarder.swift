import NIOCore
import MeshCore
import RTP

/// The core of a forwarding node (an SFU) for one forwarded room call, without sockets: what the
/// participants send goes in (decrypted RTP and RTCP), what to send to whom comes out
/// (docs/rooms.md "The forwarding core").
///
/// It never decodes media. Per receiver and per stream of another participant it keeps an
/// outgoing stream with its own SSRC, sequence numbers and timestamps: a source's packets are
/// rewritten on the way out (RFC 3550 §7.3, a translator that changes the SSRC must then speak
/// for the stream in RTCP), so that a later switch of what feeds the stream (a simulcast layer,
/// another speaker) needs no renegotiation with the receiver. The packets of each source are
/// kept once in a ring cache; a receiver's NACK is answered from it, and only what the cache no
/// longer has is asked of the source. PLI and FIR go to the stream's source, coalesced per source.
/// Receiver reports and transport feedback end here. The audio level of each participant
/// (RFC 6464) is read to report who speaks.
///
/// What a participant may do is checked against what it declared when it joined: RTP only for
/// its own SSRCs and payload types, feedback only for streams sent to it. Everything it can make
/// the forwarder hold or send is bounded by ``ForwardingConfiguration``.
public struct SelectiveForwarder: Sendable {
    /// The bounds and timings in force.
    public let configuration: ForwardingConfiguration
    /// What the forwarder did so far.
    public internal(set) var counters = ForwarderCounters()

    var participants: [String: Participant] = [:]
    /// Source SSRC (and RTX SSRC) → owner, for the whole call: SSRCs are unique in a call.
    var sourceOwners: [UInt32: String] = [:]
    /// Every SSRC in use in the call: sources, their RTX streams, and the forwarder's own.
    var usedSSRCs: Set<UInt32> = []
    private var generator = SystemRandomNumberGenerator()

    /// One participant: what it sends, and what the forwarder sends it.
    struct Participant: Sendable {
        var extensions: ForwardingExtensionIDs
        /// By SSRC: single streams, and the simulcast layers learned so far.
        var sources: [UInt32: SourceStream] = [:]
        /// Simulcast sources by their key (an SSRC of the forwarder's that stands for the source
        /// in ``outgoingBySource``; the layers' own SSRCs change nothing for receivers).
        var simulcast: [UInt32: SimulcastSource] = [:]
        /// RTX SSRC → the source SSRC it repairs.
        var repairs: [UInt32: UInt32] = [:]
        /// Outgoing SSRC → stream, for what is sent to this participant.
        var outgoing: [UInt32: OutgoingStream] = [:]
        /// Source SSRC (of another participant) → outgoing SSRC to this participant.
        var outgoingBySource: [UInt32: UInt32] = [:]
        /// The receiver's bandwidth estimate from its transport-cc feedback about the forwarder's
        /// own transport-wide numbers (and its loss reports); it numbers what is sent to it.
        var estimator: SendSideBandwidthEstimator
        /// The receiver has sent transport-cc feedback or a loss report about what it gets: the
        /// estimate is its own, not the start guess (only then does the budget withhold or pause).
        var congestionFeedback = false
        var nextLayerChoice: Duration = .zero
        var retransmissionTokens: Double
        var tokensUpdated: Duration
        var loudestRecent: (level: UInt8, at: Duration)?
        /// When it last spoke (a level at or above the speaking level): the order in which a
        /// squeezed receiver keeps voices and videos.
        var lastSpokeAt: Duration?
        /// Since when this receiver's estimate has allowed more voices or videos than it gets.
        var moreVoicesSince: Duration?
        var moreVideosSince: Duration?
    }

    struct SourceStream: Sendable {
        var description: ForwardedSource
        /// For a simulcast layer: its source's key and its index (0 the lowest).
        var layerOf: (key: UInt32, layer: Int)?
        var cache: ForwardingPacketCache
        /// What it sent over the last second (for the layer choice's budget).
        var rate = BitrateMeter(window: .seconds(1))
        var lastKeyFrameRequest: Duration?
        /// A request came within the interval (or a receiver started to receive): sent by ``tick(now:)`` when the interval allows.
        var keyFramePending = false
        var firSequence: UInt8 = 0
    }

    struct OutgoingStream: Sendable {
        let ssrc: UInt32
        let kind: ForwardedSource.Kind
        let from: String
        let sourceSSRC: UInt32
        /// The RTX stream (RFC 4588) of a video stream: retransmissions go there when the receiver
        /// negotiated RTX, since SRTP refuses to protect one sequence number twice (RFC 3711 §3.3.2).
        let retransmissionSSRC: UInt32?
        var nextRetransmissionSequence: UInt16
        var binding: ForwardingBinding?
        /// Outgoing = source + delta (mod 2^16, 2^32): random starts as RFC 3550 §5.1 asks of any sender.
        var sequenceDelta: UInt16
        var timestampDelta: UInt32
        var packetCount: UInt32 = 0
        var octetCount: UInt32 = 0
        /// For a simulcast source: which layer feeds the stream, and since when.
        var simulcast: OutgoingLayers?
        /// An audio stream the receiver's budget leaves out for now (``chooseLayers(now:)``).
        var withheld: WithheldAudio?
    }

    /// An empty forwarded call.
    public init(configuration: ForwardingConfiguration = ForwardingConfiguration()) {
        self.configuration = configuration
    }

    /// The participants, in no order.
    public var participantIDs: [String] { Array(participants.keys) }

    /// Adds a participant that sends `sources`; creates the outgoing streams between it and
    /// everyone already in. The caller then negotiates them with each receiver (``outgoingStreams(to:)``,
    /// ``bind(receiver:ssrc:_:)``); nothing is forwarded on a stream before it is bound.
    ///
    /// - Throws: ``MediaError`` `.limitReached` past ``ForwardingConfiguration/maxParticipants`` or
    ///   ``ForwardingConfiguration/maxSourcesPerParticipant``, `.conflict` for an id already in or an
    ///   SSRC another stream of the call uses.
    public mutating func addParticipant(_ id: String, sources: [ForwardedSource], extensions: ForwardingExtensionIDs, now: Duration) throws(MediaError) {
        guard participants[id] == nil else { throw MediaError(.conflict, "participant \(id) is already in the forwarded call") }
        guard participants.count < configuration.maxParticipants else {
            throw MediaError(.limitReached, "the forwarded call has its \(configuration.maxParticipants) participants (ForwardingConfiguration.maxParticipants)")
        }
        guard sources.count <= configuration.maxSourcesPerParticipant else {
            throw MediaError(.limitReached, "participant \(id) declares \(sources.count) streams; at most \(configuration.maxSourcesPerParticipant) are forwarded")
        }
        var declared: Set<UInt32> = []
        for source in sources {
            if !source.simulcastRIDs.isEmpty {
                // A simulcast source's SSRCs are learned from its packets (``learnLayer(from:of:now:)``).
                let rids = source.simulcastRIDs
                guard source.kind == .video, (1...3).contains(rids.count), Set(rids).count == rids.count else {
                    throw MediaError(.forbidden, "participant \(id) declares a simulcast source of rids \(rids): the forwarder takes 1–3 distinct rids of video")
                }
                continue
            }
            for ssrc in [source.ssrc] + (source.retransmission.map { [$0.ssrc] } ?? []) {
                guard !usedSSRCs.contains(ssrc), declared.insert(ssrc).inserted else {
                    throw MediaError(.conflict, "participant \(id) declares SSRC \(ssrc), which another stream of the call already uses (RFC 3550 §8: SSRCs are unique in a session)")
                }
            }
        }
        usedSSRCs.formUnion(declared)
        var participant = Participant(
            extensions: extensions,
            estimator: SendSideBandwidthEstimator(configuration: .init(
                startBitrate: configuration.receiverStartBitrate, minimumBitrate: configuration.receiverBitrateRange.lowerBound,
                maximumBitrate: configuration.receiverBitrateRange.upperBound,
                // What a receiver gets is what the layer choice sent it, not what its link could take:
                // that must not hold its estimate down (the forwarder does not probe).
                acknowledgedHeadroom: nil)),
            retransmissionTokens: Double(configuration.maxRetransmissionsPerSecond), tokensUpdated: now)
        var sources = sources
        for index in sources.indices where !sources[index].simulcastRIDs.isEmpty {
            // The key stands for the source in outgoingBySource; it is never on the wire.
            sources[index].ssrc = unusedSSRC()
            participant.simulcast[sources[index].ssrc] = SimulcastSource(description: sources[index])
        }
        for source in sources where source.simulcastRIDs.isEmpty {
            let capacity = source.kind == .video ? configuration.videoCacheCapacity : configuration.audioCacheCapacity
            participant.sources[source.ssrc] = SourceStream(description: source, cache: ForwardingPacketCache(capacity: capacity, maxAge: configuration.cacheMaxAge))
            if let rtx = source.retransmission { participant.repairs[rtx.ssrc] = source.ssrc }
            sourceOwners[source.ssrc] = id
            if let rtx = source.retransmission { sourceOwners[rtx.ssrc] = id }
        }
        // Streams both ways between the newcomer and everyone already in.
        for otherID in participants.keys {
            for source in participants[otherID]!.forwardedSources {
                let stream = newOutgoing(from: otherID, source: source)
                participant.outgoing[stream.ssrc] = stream
                participant.outgoingBySource[source.ssrc] = stream.ssrc
            }
            for source in sources {
                let stream = newOutgoing(from: id, source: source)
                participants[otherID]!.outgoing[stream.ssrc] = stream
                participants[otherID]!.outgoingBySource[source.ssrc] = stream.ssrc
            }
        }
        participants[id] = participant
    }

    /// Removes a participant: its streams stop, and every receiver gets an RTCP BYE for the
    /// outgoing streams that carried them (RFC 3550 §6.6), so its players end at once.
    public mutating func removeParticipant(_ id: String) -> [ForwarderOutput] {
        guard let leaving = participants.removeValue(forKey: id) else { return [] }
        var outputs: [ForwarderOutput] = []
        for ssrc in leaving.sources.keys { sourceOwners[ssrc] = nil; usedSSRCs.remove(ssrc) }
        for ssrc in leaving.repairs.keys { sourceOwners[ssrc] = nil; usedSSRCs.remove(ssrc) }
        for key in leaving.simulcast.keys { usedSSRCs.remove(key) }
        for stream in leaving.outgoing.values {
            usedSSRCs.remove(stream.ssrc)
            if let rtx = stream.retransmissionSSRC { usedSSRCs.remove(rtx) }
        }
        for receiverID in participants.keys {
            var ended: [UInt32] = []
            for sourceSSRC in leaving.forwardedSources.map(\.ssrc) {
                guard let outgoingSSRC = participants[receiverID]!.outgoingBySource.removeValue(forKey: sourceSSRC) else { continue }
                let stream = participants[receiverID]!.outgoing.removeValue(forKey: outgoingSSRC)
                usedSSRCs.remove(outgoingSSRC)
                if let rtx = stream?.retransmissionSSRC { usedSSRCs.remove(rtx) }
                if let stream, let binding = stream.binding {
                    ended.append(outgoingSSRC)
                    if binding.retransmissionPayloadType != nil, let rtx = stream.retransmissionSSRC { ended.append(rtx) }
                }
            }
            if !ended.isEmpty {
                outputs.append(.rtcp(to: receiverID, [.goodbye(RTCPGoodbye(ssrcs: ended.sorted(), reason: "participant left"))]))
            }
        }
        return outputs
    }

    /// The streams the forwarder sends (or will send once bound) to `receiver`, by source.
    public func outgoingStreams(to receiver: String) -> [ForwardedStreamDescription] {
        guard let participant = participants[receiver] else { return [] }
        return participant.outgoing.values
            .map { ForwardedStreamDescription(ssrc: $0.ssrc, kind: $0.kind, from: $0.from, sourceSSRC: $0.sourceSSRC,
                                              retransmissionSSRC: $0.retransmissionSSRC, binding: $0.binding) }
            .sorted { ($0.from, $0.kind.rawValue) < ($1.from, $1.kind.rawValue) }
    }

    /// Records that `receiver`'s SDP now has an m-section for the outgoing stream `ssrc`; its
    /// packets flow from now on. For video, a key frame is asked of the source (sent by
    /// ``tick(now:)``): the receiver cannot decode before one.
    /// - Throws: ``MediaError`` `.unknownParticipant`, or `.forbidden` for an SSRC not sent to it.
    public mutating func bind(receiver: String, ssrc: UInt32, _ binding: ForwardingBinding) throws(MediaError) {
        guard participants[receiver] != nil else { throw MediaError(.unknownParticipant, "no participant \(receiver) in the forwarded call") }
        guard participants[receiver]!.outgoing[ssrc] != nil else {
            throw MediaError(.forbidden, "the forwarder sends no stream with SSRC \(ssrc) to \(receiver)")
        }
        let stream = participants[receiver]!.outgoing[ssrc]!
        participants[receiver]!.outgoing[ssrc]!.binding = binding
        if stream.kind == .video, participants[stream.from]?.simulcast[stream.sourceSSRC] != nil {
            // The top layer to start with; the estimate moves it (``chooseLayers``). Its key frame is asked for by ``tick``.
            let top = participants[stream.from]!.simulcast[stream.sourceSSRC]!.description.simulcastRIDs.count - 1
            participants[receiver]!.outgoing[ssrc]!.simulcast = OutgoingLayers(target: top)
        } else if stream.kind == .video {
            participants[stream.from]?.sources[stream.sourceSSRC]?.keyFramePending = true
        }
    }

    /// Sends what waited for time to pass: key-frame requests held back by
    /// ``ForwardingConfiguration/minKeyFrameRequestInterval``. Call it every few tens of milliseconds.
    public mutating func tick(now: Duration) -> [ForwarderOutput] {
        var outputs: [ForwarderOutput] = []
        chooseLayers(now: now)
        expireCachedPackets(now: now)
        for (id, participant) in participants {
            for (ssrc, source) in participant.sources where source.keyFramePending {
                if let last = source.lastKeyFrameRequest, now - last < configuration.minKeyFrameRequestInterval { continue }
                participants[id]!.sources[ssrc]!.keyFramePending = false
                participants[id]!.sources[ssrc]!.lastKeyFrameRequest = now
                counters.plisForwarded += 1
                let pli = RTCPPictureLossIndication(senderSSRC: configuration.feedbackSSRC, mediaSSRC: ssrc)
                outputs.append(.rtcp(to: id, [.pictureLossIndication(pli)]))
            }
        }
        return outputs
    }

    /// How many slots of each cache one ``tick(now:)`` looks at: every slot twice a second at the
    /// 20 ms ticks `ForwardedCall` runs.
    static func expirySlotsPerTick(capacity: Int) -> Int { max(1, capacity / 25) }

    /// Frees cached packets too old to be sent again (``ForwardingPacketCache/expire(now:slots:)``).
    private mutating func expireCachedPackets(now: Duration) {
        // Over copies of the keys, writing in place: iterating the dictionaries while writing to
        // them would copy their storage.
        for id in Array(participants.keys) {
            for ssrc in Array(participants[id]!.sources.keys) {
                let count = Self.expirySlotsPerTick(capacity: participants[id]!.sources[ssrc]!.cache.capacity)
                participants[id]!.sources[ssrc]!.cache.expire(now: now, slots: count)
            }
        }
    }

    // MARK: RTP

    /// Takes an RTP packet (decrypted) from participant `from`; returns the copies to send.
    ///
    /// An RTX packet (RFC 4588) of a declared pair is unwrapped and forwarded as the original: it
    /// fills the gap the receivers NACKed.
    /// - Throws: ``MediaError`` `.forbidden` for an SSRC or payload type the participant did not
    ///   declare, `.malformed` for an RTX packet without its original sequence number,
    ///   `.unknownParticipant`. The packet is dropped then.
    public mutating func forward(_ received: RTPPacket, from id: String, now: Duration) throws(MediaError) -> [ForwarderOutput] {
        guard participants[id] != nil else { throw MediaError(.unknownParticipant, "no participant \(id) in the forwarded call") }
        var packet = received
        if let original = participants[id]!.repairs[received.ssrc] {
            let description = participants[id]!.sources[original]!.description
            guard received.payloadType == description.retransmission?.payloadType else {
                return try reject(.forbidden, "\(id) sent payload type \(received.payloadType) on its RTX SSRC \(received.ssrc)")
            }
            do {
                packet = try RTXPacket.unwrap(received, originalPayloadType: description.payloadType, originalSSRC: original)
            } catch {
                return try reject(.malformed, "\(id)'s RTX packet: \(error.reason)")
            }
        }
        if participants[id]!.sources[packet.ssrc] == nil, participants[id]!.repairs[packet.ssrc] == nil, !participants[id]!.simulcast.isEmpty {
            // A simulcast layer's first packet: its rid says which layer the SSRC is (RFC 8852 §3).
            let learned: Bool
            do { learned = try learnLayer(from: packet, of: id, now: now) } catch { return try reject(error.code, error.reason) }
            if learned, participants[id]!.repairs[packet.ssrc] != nil { return try forward(received, from: id, now: now) }
        }
        // The stream's description and layer only, not a copy of the stream: a copy would share the
        // storage of its cache, and the insert below would then copy the whole ring per packet.
        guard let (description, layerOf) = participants[id]!.sources[packet.ssrc].map({ ($0.description, $0.layerOf) }) else {
            let owner = sourceOwners[packet.ssrc].map { "it belongs to \($0)" } ?? "it declared no such stream"
            return try reject(.forbidden, "\(id) sent RTP with SSRC \(packet.ssrc): \(owner)")
        }
        guard packet.payloadType == description.payloadType else {
            return try reject(.forbidden, "\(id) sent payload type \(packet.payloadType) on SSRC \(packet.ssrc), declared \(description.payloadType)")
        }
        let size = Self.size(of: packet)
        counters.packetsIn += 1
        counters.bytesIn += size
        participants[id]!.sources[packet.ssrc]!.cache.insert(packet, now: now)

        var level: AudioLevel?
        if description.kind == .audio, let levelID = participants[id]!.extensions.audioLevel,
           let data = packet.headerExtension?.element(id: levelID) {
            level = AudioLevel(extensionData: data)
            if let level { noteLevel(level, of: id, now: now) }
        }

        var outputs: [ForwarderOutput] = []
        outputs.reserveCapacity(participants.count - 1)
        // Metered as the receivers' links carry it (the layer and voice choice weighs it against their estimates).
        let metered = size + Self.packetOverhead
        if let layer = layerOf {
            participants[id]!.simulcast[layer.key]!.rates[layer.layer].add(bytes: metered, at: now)
        }
        let vp8 = layerOf != nil ? Self.vp8Start(of: packet) : nil
        participants[id]!.sources[packet.ssrc]!.rate.add(bytes: metered, at: now)
        // Over a copy of the keys: iterating `participants.keys` would hold the dictionary's storage
        // while the loop writes to it, so every write would copy it and each receiver's streams.
        for receiverID in Array(participants.keys) where receiverID != id {
            guard let outgoingSSRC = participants[receiverID]!.outgoingBySource[layerOf?.key ?? packet.ssrc],
                  participants[receiverID]!.outgoing[outgoingSSRC]!.binding != nil else { continue }
            if let layer = layerOf,
               !admitLayerPacket(packet, layer: layer.layer, vp8: vp8, receiver: receiverID, outgoingSSRC: outgoingSSRC, now: now) {
                continue
            }
            if participants[receiverID]!.outgoing[outgoingSSRC]!.withheld != nil,
               !admitWithheld(packet, receiver: receiverID, outgoingSSRC: outgoingSSRC, now: now) {
                continue
            }
            let copy = rewrite(packet, audioLevel: level, receiver: receiverID, outgoingSSRC: outgoingSSRC, now: now)
            participants[receiverID]!.outgoing[outgoingSSRC]!.packetCount &+= 1
            participants[receiverID]!.outgoing[outgoingSSRC]!.octetCount &+= UInt32(truncatingIfNeeded: packet.payload.readableBytes)
            counters.packetsOut += 1
            counters.bytesOut += Self.size(of: copy)
            outputs.append(.rtp(to: receiverID, copy))
        }
        return outputs
    }

    // MARK: RTCP

    /// What a compound RTCP packet from a participant caused: packets to send, and what in it was refused.
    public struct RTCPResult: Sendable {
        /// Packets to send (retransmissions to the sender, key-frame requests and NACKs to sources,
        /// translated sender reports to receivers).
        public var outputs: [ForwarderOutput] = []
        /// Each refused part, with the reason (for the log; the rest of the compound packet was handled).
        public var refusals: [MediaError] = []
    }

    /// Takes a compound RTCP packet (decrypted) from participant `from`.
    /// - Throws: ``MediaError`` `.malformed` when the datagram does not parse (nothing in it is
    ///   acted on: a lying length could make later packets read garbage), `.unknownParticipant`.
    public mutating func handleRTCP(_ datagram: ByteBuffer, from id: String, now: Duration) throws(MediaError) -> RTCPResult {
        try handleRTCP(parseRTCP(datagram, from: id), from: id, now: now)
    }

    /// A participant's compound RTCP packet parsed whole, for a session layer that reads it
    /// too (its own reports on the uplink) before the `handleRTCP` that takes the parsed packets.
    /// - Throws: ``MediaError`` `.malformed` (counted in `rejected`): nothing in it is acted on.
    public mutating func parseRTCP(_ datagram: ByteBuffer, from id: String) throws(MediaError) -> [RTCPPacket] {
        guard participants[id] != nil else { throw MediaError(.unknownParticipant, "no participant \(id) in the forwarded call") }
        do {
            return try RTCPPacket.parseCompound(datagram)
        } catch {
            counters.rejected += 1
            throw MediaError(.malformed, "RTCP from \(id): \(error.reason)")
        }
    }

    /// The packets of one compound RTCP packet from participant `id`, parsed by ``parseRTCP(_:from:)``.
    public mutating func handleRTCP(_ packets: [RTCPPacket], from id: String, now: Duration) throws(MediaError) -> RTCPResult {
        guard participants[id] != nil else { throw MediaError(.unknownParticipant, "no participant \(id) in the forwarded call") }
        var result = RTCPResult()
        for packet in packets {
            switch packet {
            case .senderReport(let report):
                translate(report, from: id, into: &result)
            case .transportFeedback(let feedback):
                // About the forwarder's own transport-wide numbers to this receiver: its estimate.
                participants[id]!.estimator.handle(.transportFeedback(feedback), now: now)
                participants[id]!.congestionFeedback = true
                counters.reportsTerminated += 1
            case .receiverReport(let report):
                if let block = report.reports.first(where: { participants[id]!.outgoing[$0.ssrc] != nil }) {
                    participants[id]!.estimator.handle(.receiverReport(RTCPReceiverReport(ssrc: report.ssrc, reports: [block])), now: now)
                    participants[id]!.congestionFeedback = true
                }
                counters.reportsTerminated += 1
            case .receiverEstimatedMaxBitrate, .sourceDescription:
                // RFC 3550 §7.3: the forwarder rewrites the streams, so reports about them describe
                // its hop and end here; it reports to each source itself.
                counters.reportsTerminated += 1
            case .goodbye:
                // Leaving is the signaling's business (the participant's `leave`); a BYE alone does not remove it.
                counters.reportsTerminated += 1
            case .nack(let nack):
                answer(nack, from: id, now: now, into: &result)
            case .pictureLossIndication(let pli):
                requestKeyFrame(outgoingSSRC: pli.mediaSSRC, asFIR: false, from: id, now: now, into: &result)
            case .fullIntraRequest(let fir):
                for entry in fir.entries.prefix(configuration.maxSourcesPerParticipant * configuration.maxParticipants) {
                    requestKeyFrame(outgoingSSRC: entry.ssrc, asFIR: true, from: id, now: now, into: &result)
                }
            case .unknown:
                counters.reportsTerminated += 1
            }
        }
        counters.rejected += result.refusals.count
        return result
    }

    // MARK: Speakers

    /// Who spoke within ``ForwardingConfiguration/speakingHold`` at or above the speaking level, loudest first.
    public func speakers(now: Duration) -> [ForwardingSpeaker] {
        participants.compactMap { id, participant -> ForwardingSpeaker? in
            guard let recent = participant.loudestRecent, now - recent.at <= configuration.speakingHold,
                  recent.level <= configuration.speakingLevel else { return nil }
            return ForwardingSpeaker(participant: id, level: recent.level)
        }
        .sorted { ($0.level, $0.participant) < ($1.level, $1.participant) }
    }

    // MARK: Internals

    /// A stream to a receiver with an SSRC unused in the call and random starts (RFC 3550 §5.1).
    private mutating func newOutgoing(from sender: String, source: ForwardedSource) -> OutgoingStream {
        let ssrc = unusedSSRC()
        return OutgoingStream(
            ssrc: ssrc, kind: source.kind, from: sender, sourceSSRC: source.ssrc,
            retransmissionSSRC: source.kind == .video ? unusedSSRC() : nil,
            nextRetransmissionSequence: UInt16.random(in: 0...UInt16.max, using: &generator), binding: nil,
            sequenceDelta: UInt16.random(in: 0...UInt16.max, using: &generator), timestampDelta: UInt32.random(in: 0...UInt32.max, using: &generator))
    }

    private mutating func unusedSSRC() -> UInt32 {
        var ssrc: UInt32
        repeat { ssrc = UInt32.random(in: 2...UInt32.max, using: &generator) } while usedSSRCs.contains(ssrc)
        usedSSRCs.insert(ssrc)
        return ssrc
    }

    /// The copy of a source packet for one receiver: its SSRC, sequence number, timestamp and
    /// payload type, and the header extensions it negotiated (the source's ids mean nothing to it).
    mutating func rewrite(_ packet: RTPPacket, audioLevel: AudioLevel?, receiver: String, outgoingSSRC: UInt32, now: Duration,
                          mapping: LayerMapping? = nil) -> RTPPacket {
        let stream = participants[receiver]!.outgoing[outgoingSSRC]!
        let ids = participants[receiver]!.extensions
        var elements: [RTPHeaderExtensionElement] = []
        if let id = ids.mid, let mid = stream.binding?.mid { elements.append(.mid(id: id, mid)) }
        if let id = ids.audioLevel, let audioLevel { elements.append(RTPHeaderExtensionElement(id: id, bytes: [audioLevel.byte])) }
        if let id = ids.transportWideCC {
            // The size the receiver's feedback will be weighed with: the packet, SRTP's tag, IP and UDP.
            let size = Self.size(of: packet) + 8 + 10 + 28
            elements.append(.transportSequenceNumber(id: id, participants[receiver]!.estimator.packetSent(size: size, now: now)))
        }
        var sequenceDelta = stream.sequenceDelta, timestampDelta = stream.timestampDelta
        var payload = packet.payload
        if let mapping {
            // A retransmission keeps the mapping its number was first sent with (the layer before a switch, say).
            (sequenceDelta, timestampDelta) = (mapping.sequenceDelta, mapping.timestampDelta)
            payload = Self.rewritePictureIDs(payload, pictureIDDelta: mapping.pictureIDDelta, tl0Delta: mapping.tl0Delta)
        } else if let layers = stream.simulcast {
            payload = Self.rewritePictureIDs(payload, pictureIDDelta: layers.pictureIDDelta, tl0Delta: layers.tl0Delta)
        }
        return RTPPacket(
            marker: packet.marker, payloadType: stream.binding?.payloadType ?? packet.payloadType,
            sequenceNumber: packet.sequenceNumber &+ sequenceDelta, timestamp: packet.timestamp &+ timestampDelta,
            ssrc: outgoingSSRC, csrcs: [], headerExtension: elements.isEmpty ? nil : .compact(elements),
            payload: payload, paddingLength: 0)
    }

    private mutating func answer(_ nack: RTCPGenericNACK, from id: String, now: Duration, into result: inout RTCPResult) {
        guard let stream = participants[id]!.outgoing[nack.mediaSSRC], stream.binding != nil else {
            result.refusals.append(MediaError(.forbidden, "\(id) sent a NACK for SSRC \(nack.mediaSSRC), which the forwarder does not send it"))
            return
        }
        guard let owner = participants[stream.from] else { return }
        refillTokens(of: id, now: now)
        var missing: [UInt32: [UInt16]] = [:]
        for outgoingSequence in nack.lostSequenceNumbers.prefix(configuration.maxSequencesPerNACK) {
            counters.nackedPackets += 1
            // A simulcast stream maps back to the layer that fed that number (before or after the last switch).
            guard let mapping = Self.mapping(of: outgoingSequence, in: stream), let source = owner.sources[mapping.ssrc] else { continue }
            let sourceSSRC = mapping.ssrc
            let sourceSequence = outgoingSequence &- mapping.sequenceDelta
            guard let cached = source.cache.packet(sourceSequence, now: now) else {
                missing[sourceSSRC, default: []].append(sourceSequence)
                continue
            }
            guard participants[id]!.retransmissionTokens >= 1 else {
                counters.retransmissionsThrottled += 1
                continue
            }
            participants[id]!.retransmissionTokens -= 1
            var level: AudioLevel?
            if let levelID = owner.extensions.audioLevel, let data = cached.headerExtension?.element(id: levelID) { level = AudioLevel(extensionData: data) }
            var copy = rewrite(cached, audioLevel: level, receiver: id, outgoingSSRC: stream.ssrc, now: now, mapping: mapping)
            if let payloadType = stream.binding?.retransmissionPayloadType, let rtxSSRC = stream.retransmissionSSRC {
                let sequence = participants[id]!.outgoing[stream.ssrc]!.nextRetransmissionSequence
                participants[id]!.outgoing[stream.ssrc]!.nextRetransmissionSequence &+= 1
                copy = RTXPacket.wrap(copy, payloadType: payloadType, ssrc: rtxSSRC, sequenceNumber: sequence)
            }
            counters.nacksAnsweredFromCache += 1
            counters.packetsOut += 1
            counters.bytesOut += Self.size(of: copy)
            result.outputs.append(.rtp(to: id, copy))
        }
        for (sourceSSRC, sequences) in missing.sorted(by: { $0.key < $1.key }) {
            counters.nacksForwardedToSource += sequences.count
            let forwarded = RTCPGenericNACK(senderSSRC: configuration.feedbackSSRC, mediaSSRC: sourceSSRC, lostSequenceNumbers: sequences)
            result.outputs.append(.rtcp(to: stream.from, [.nack(forwarded)]))
        }
    }

    private mutating func requestKeyFrame(outgoingSSRC: UInt32, asFIR: Bool, from id: String, now: Duration, into result: inout RTCPResult) {
        guard let stream = participants[id]!.outgoing[outgoingSSRC], stream.kind == .video else {
            result.refusals.append(MediaError(.forbidden, "\(id) asked for a key frame of SSRC \(outgoingSSRC), which is no video stream the forwarder sends it"))
            return
        }
        counters.keyFrameRequestsReceived += 1
        // A paused stream asks for its key frame itself when it resumes: the receiver's requests
        // meanwhile would cost the sender key frames nobody gets.
        if stream.simulcast?.paused == true { return }
        // A simulcast stream's key frame comes from the layer it is switching to, or the one feeding it.
        let sourceSSRC = stream.simulcast.flatMap { layers in
            participants[stream.from]?.simulcast[stream.sourceSSRC]?.ssrcs[layers.target] ?? layers.feedingSSRC
        } ?? stream.sourceSSRC
        guard participants[stream.from]?.sources[sourceSSRC] != nil else { return }
        requestKeyFrame(sourceSSRC: sourceSSRC, of: stream.from, asFIR: asFIR, now: now, into: &result)
    }

    private mutating func requestKeyFrame(sourceSSRC: UInt32, of sender: String, asFIR: Bool, now: Duration, into result: inout RTCPResult) {
        let stream = (from: sender, sourceSSRC: sourceSSRC)
        if let last = participants[stream.from]!.sources[stream.sourceSSRC]!.lastKeyFrameRequest,
           now - last < configuration.minKeyFrameRequestInterval {
            // The key frame already asked for may have left before this receiver lost its picture: ask again when allowed.
            participants[stream.from]!.sources[stream.sourceSSRC]!.keyFramePending = true
            return
        }
        participants[stream.from]!.sources[stream.sourceSSRC]!.lastKeyFrameRequest = now
        participants[stream.from]!.sources[stream.sourceSSRC]!.keyFramePending = false
        if asFIR {
            // RFC 5104 §4.3.1.2: the sequence number grows by one per new request to that source.
            participants[stream.from]!.sources[stream.sourceSSRC]!.firSequence &+= 1
            let sequence = participants[stream.from]!.sources[stream.sourceSSRC]!.firSequence
            counters.firsForwarded += 1
            let fir = RTCPFullIntraRequest(senderSSRC: configuration.feedbackSSRC, entries: [.init(ssrc: stream.sourceSSRC, sequenceNumber: sequence)])
            result.outputs.append(.rtcp(to: stream.from, [.fullIntraRequest(fir)]))
        } else {
            counters.plisForwarded += 1
            let pli = RTCPPictureLossIndication(senderSSRC: configuration.feedbackSSRC, mediaSSRC: stream.sourceSSRC)
            result.outputs.append(.rtcp(to: stream.from, [.pictureLossIndication(pli)]))
        }
    }

    /// A source's sender report, per receiver: the outgoing SSRC, the timestamp shifted as the
    /// packets are, the counts of what was sent to that receiver (RFC 3550 §7.3), so that the
    /// receiver can still sync audio with video.
    private mutating func translate(_ report: RTCPSenderReport, from id: String, into result: inout RTCPResult) {
        guard participants[id]!.sources[report.ssrc] != nil else {
            result.refusals.append(MediaError(.forbidden, "\(id) sent a sender report for SSRC \(report.ssrc), which it does not send"))
            return
        }
        counters.reportsTerminated += report.reports.isEmpty ? 0 : 1
        let layerOf = participants[id]!.sources[report.ssrc]!.layerOf
        for receiverID in participants.keys where receiverID != id {
            guard let outgoingSSRC = participants[receiverID]!.outgoingBySource[layerOf?.key ?? report.ssrc],
                  let stream = participants[receiverID]!.outgoing[outgoingSSRC], stream.binding != nil else { continue }
            // A simulcast stream reports the layer that feeds it now, on that layer's timeline.
            if layerOf != nil, stream.simulcast?.feedingSSRC != report.ssrc { continue }
            let translated = RTCPSenderReport(
                ssrc: outgoingSSRC, ntpTimestamp: report.ntpTimestamp, rtpTimestamp: report.rtpTimestamp &+ stream.timestampDelta,
                packetCount: stream.packetCount, octetCount: stream.octetCount)
            counters.senderReportsForwarded += 1
            result.outputs.append(.rtcp(to: receiverID, [.senderReport(translated)]))
        }
    }

    private mutating func noteLevel(_ level: AudioLevel, of id: String, now: Duration) {
        if level.level <= configuration.speakingLevel { participants[id]!.lastSpokeAt = now }
        // The loudest level within the hold time: a word's quiet tail does not end "speaking".
        if let recent = participants[id]!.loudestRecent, now - recent.at <= configuration.speakingHold, recent.level < level.level { return }
        participants[id]!.loudestRecent = (level.level, now)
    }

    private mutating func refillTokens(of id: String, now: Duration) {
        let elapsed = now - participants[id]!.tokensUpdated
        guard elapsed > .zero else { return }
        let rate = Double(configuration.maxRetransmissionsPerSecond)
        participants[id]!.retransmissionTokens = min(rate, participants[id]!.retransmissionTokens + elapsed.seconds * rate)
        participants[id]!.tokensUpdated = now
    }

    private mutating func reject(_ code: MediaError.Code, _ reason: String) throws(MediaError) -> [ForwarderOutput] {
        counters.rejected += 1
        throw MediaError(code, reason)
    }

    /// The packet's size on the wire before SRTP: header, CSRCs, extension block (RFC 8285), payload, padding.
    static func size(of packet: RTPPacket) -> Int {
        var extensionSize = 0
        switch packet.headerExtension {
        case .oneByte(let elements)?: extensionSize = 4 + (elements.reduce(0) { $0 + 1 + $1.data.readableBytes } + 3) / 4 * 4
        case .twoByte(_, let elements)?: extensionSize = 4 + (elements.reduce(0) { $0 + 2 + $1.data.readableBytes } + 3) / 4 * 4
        case .other(_, let data)?: extensionSize = 4 + data.readableBytes
        case nil: break
        }
        return RTPPacket.fixedHeaderSize + 4 * packet.csrcs.count + extensionSize + packet.payload.readableBytes + Int(packet.paddingLength)
    }
}
