import NIOCore
import SDP
import RTP

/// A forwarded room call in simulated time (docs/rooms.md "The forwarding core"): participants
/// join one after another, each sends test-pattern video and tone audio once to a
/// ``SelectiveForwarder`` over a lossy uplink, and receives every other participant through it
/// over a lossy downlink, decoding each sender with a session of its own.
///
/// Each participant's sessions are the call's own ``MediaSessionCore``s, negotiated by the call's
/// offer/answer: one that sends (offered to the forwarder, as a participant's call to it is) and,
/// per other participant, one that receives that participant's two streams, which the forwarder
/// adds to its multistream offer (``JSEPOffer/makeForwarded(local:forwarded:)``) at each join. So the loop
/// runs what a forwarded call runs: the forwarder rewrites real VP8/Opus packets, answers the
/// receivers' NACKs from its cache, passes their PLIs to the sender (a newcomer's decoders ask
/// for a key frame), and ends their reports. Sockets, ICE and DTLS-SRTP are what it leaves out.
public final class ForwardedCallLoop {
    /// What to run.
    public struct Configuration: Sendable {
        /// Participants, joining ``joinInterval`` apart.
        public var participants: Int
        public var joinInterval: Duration
        public var width: Int
        public var height: Int
        public var framesPerSecond: Int
        public var videoBitrateKbps: Int
        /// Simulated time from the last join to the end.
        public var duration: Duration
        /// Random loss on every uplink and downlink, 0–1.
        public var lossProbability: Double
        /// One-way delay of each link.
        public var delay: Duration
        /// The forwarder's bounds.
        public var forwarding: ForwardingConfiguration
        /// Seed of the links' random choices.
        public var seed: UInt64

        /// Creates a configuration: five participants 0.5 s apart, 320×180 at 15 fps, 2 s after the last join, 2 % loss per link.
        public init(participants: Int = 5, joinInterval: Duration = .milliseconds(500), width: Int = 320, height: Int = 180,
                    framesPerSecond: Int = 15, videoBitrateKbps: Int = 300, duration: Duration = .seconds(2), lossProbability: Double = 0.02,
                    delay: Duration = .milliseconds(10), forwarding: ForwardingConfiguration = ForwardingConfiguration(), seed: UInt64 = 1) {
            self.participants = participants
            self.joinInterval = joinInterval
            self.width = width
            self.height = height
            self.framesPerSecond = framesPerSecond
            self.videoBitrateKbps = videoBitrateKbps
            self.duration = duration
            self.lossProbability = lossProbability
            self.delay = delay
            self.forwarding = forwarding
            self.seed = seed
        }
    }

    /// What one participant received from another.
    public struct Reception: Sendable, Codable {
        public var receiver: String
        public var sender: String
        public var video: StreamStatistics
        public var audio: StreamStatistics
    }

    /// What a run produced.
    public struct Report: Sendable, Codable {
        /// One entry per ordered pair of participants.
        public var receptions: [Reception]
        /// Frames each participant encoded, and key frames among them, by name.
        public var framesSent: [String: Int]
        public var keyFramesSent: [String: Int]
        /// What the forwarder did.
        public var forwarder: ForwarderCounters
        /// Packets the forwarder refused (it should refuse none from honest participants).
        public var refusals: [String]
        /// Packets the links lost.
        public var packetsLostOnLinks: Int
        /// Who spoke at the end (RFC 6464 levels the participants sent), loudest first.
        public var speakers: [String] = []
    }

    /// The settings of the run.
    public let configuration: Configuration

    /// Creates a loop.
    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// One participant's links and sessions; the sessions' send closures write into the uplink.
    private final class Participant {
        let name: String
        var uplink: SimulatedLink<MediaEngine.Packet>
        var downlink: SimulatedLink<MediaEngine.Packet>
        var sender: MediaSessionCore?
        /// Sessions receiving each other participant, by that participant's name.
        var receivers: [String: MediaSessionCore] = [:]
        /// Outgoing SSRC (as the forwarder sends it here) → the sender's name.
        var receiverBySSRC: [UInt32: String] = [:]
        var extensions = ForwardingExtensionIDs()
        /// Its own SSRCs: audio, video, video RTX.
        var own: (audio: UInt32, video: UInt32, rtx: UInt32) = (0, 0, 0)

        init(name: String, link: SimulatedLink<MediaEngine.Packet>.Configuration, seed: UInt64) {
            self.name = name
            uplink = SimulatedLink(configuration: link, seed: seed)
            downlink = SimulatedLink(configuration: link, seed: seed &+ 1)
        }
    }

    /// Runs the call to the end and returns what each participant received.
    ///
    /// - Throws: ``SDPError`` for a negotiation, ``CodecError`` for a codec, ``MediaError`` when the
    ///   forwarder refuses a participant (a bound).
    public func run() throws -> Report {
        let config = configuration
        var random = SplitMixRandom(seed: config.seed)
        var forwarder = SelectiveForwarder(configuration: config.forwarding)
        var refusals: [String] = []
        let link = SimulatedLink<MediaEngine.Packet>.Configuration(delay: config.delay, lossProbability: config.lossProbability, reorderProbability: 0)
        let participants = (0..<config.participants).map {
            Participant(name: "p\($0 + 1)", link: link, seed: config.seed &+ UInt64($0) &* 7919)
        }
        var now = Duration.zero
        var speakers: [String] = []
        let clock = { now }
        var joined = 0
        let end = config.joinInterval * (config.participants - 1) + config.duration

        func deliver(_ outputs: [ForwarderOutput]) {
            for output in outputs {
                switch output {
                case .rtp(let to, let packet):
                    guard let target = participants.first(where: { $0.name == to }), let bytes = try? packet.serialized() else { continue }
                    target.downlink.send(.rtp(bytes), size: bytes.readableBytes, now: now)
                case .rtcp(let to, let packets):
                    guard let target = participants.first(where: { $0.name == to }), let bytes = try? RTCPPacket.serializeCompound(packets) else { continue }
                    target.downlink.send(.rtcp(bytes), size: bytes.readableBytes, now: now)
                }
            }
        }

        while now <= end + .milliseconds(300) {
            if joined < participants.count, now >= config.joinInterval * joined {
                try join(participants[joined], existing: Array(participants[..<joined]), forwarder: &forwarder, clock: clock, random: &random)
                joined += 1
            }
            if now == end {
                speakers = forwarder.speakers(now: now).map(\.participant)
                for participant in participants { participant.sender?.stopCapture() }
            }
            for participant in participants[..<joined] {
                for (packet, _) in participant.uplink.receive(now: now) {
                    do {
                        switch packet {
                        case .rtp(let bytes): deliver(try forwarder.forward(try RTPPacket(parsing: bytes), from: participant.name, now: now))
                        case .rtcp(let bytes):
                            let result = try forwarder.handleRTCP(bytes, from: participant.name, now: now)
                            refusals += result.refusals.map(\.reason)
                            deliver(result.outputs)
                        }
                    } catch {
                        refusals.append(error.errorReason)
                    }
                }
            }
            if Int(now.milliseconds.rounded()) % 20 == 0 { deliver(forwarder.tick(now: now)) }
            for participant in participants[..<joined] {
                for (packet, arrival) in participant.downlink.receive(now: now) {
                    switch packet {
                    case .rtp(let bytes):
                        // Demultiplexed by SSRC, as a receiver does with the forwarder's `a=ssrc` lines.
                        guard let ssrc = bytes.getInteger(at: bytes.readerIndex + 8, as: UInt32.self),
                              let sender = participant.receiverBySSRC[ssrc] else { continue }
                        participant.receivers[sender]?.receive(packet, arrival: arrival)
                    case .rtcp:
                        // Feedback for what it sends and reports on what it receives; each session takes its own.
                        participant.sender?.receive(packet, arrival: arrival)
                        for session in participant.receivers.values { session.receive(packet, arrival: arrival) }
                    }
                }
                _ = participant.sender?.advance(now: now)
                for session in participant.receivers.values { _ = session.advance(now: now) }
            }
            now += .milliseconds(1)
        }

        var receptions: [Reception] = []
        var framesSent: [String: Int] = [:], keyFramesSent: [String: Int] = [:]
        for participant in participants {
            let sent = participant.sender?.statistics(now: now).video
            framesSent[participant.name] = sent?.sentFrames ?? 0
            keyFramesSent[participant.name] = sent?.keyframesSent ?? 0
            for (sender, session) in participant.receivers.sorted(by: { $0.key < $1.key }) {
                receptions.append(Reception(receiver: participant.name, sender: sender,
                                            video: session.receivedVideo ?? StreamStatistics(kind: "video", codec: "VP8"), audio: session.receivedAudio))
            }
            participant.sender?.close()
            for session in participant.receivers.values { session.close() }
        }
        return Report(receptions: receptions, framesSent: framesSent, keyFramesSent: keyFramesSent, forwarder: forwarder.counters, refusals: refusals,
                      packetsLostOnLinks: participants.reduce(0) { $0 + $1.uplink.counters.lostAtRandom + $1.downlink.counters.lostAtRandom },
                      speakers: speakers)
    }

    /// A participant joins: its call to the forwarder (it offers audio and video, the forwarder
    /// answers receive-only), then the forwarder's streams of everyone already in are offered to
    /// it, and its own streams to each of them (the renegotiation of docs/rooms.md).
    private func join(_ newcomer: Participant, existing: [Participant], forwarder: inout SelectiveForwarder,
                      clock: @escaping () -> Duration, random: inout SplitMixRandom) throws {
        let config = configuration
        func ssrc() -> UInt32 { .random(in: 0x1000...UInt32.max, using: &random) }
        let own = (audio: ssrc(), video: ssrc(), rtx: ssrc())
        newcomer.own = own
        let (offer, answer) = try Self.negotiate(sending: ["audio": (own.audio, nil), "video": (own.video, own.rtx)], offerer: newcomer.name, random: &random)
        let senderStreams = try NegotiatedStream.fromOffering(offer: offer, answer: answer)
        let atForwarder = try NegotiatedStream.fromAnswering(offer: offer, answer: answer)
        let sources = atForwarder.compactMap { stream -> ForwardedSource? in
            guard let kind = ForwardedSource.Kind(rawValue: stream.kind), let ssrc = stream.remoteSSRCs.first else { return nil }
            let rtx = stream.rtxPayloadType.flatMap { pt in stream.remoteSSRCs.dropFirst().first.map { ForwardedSource.Retransmission(payloadType: pt, ssrc: $0) } }
            return ForwardedSource(kind: kind, ssrc: ssrc, payloadType: stream.payloadType, retransmission: rtx)
        }
        newcomer.extensions = ForwardingExtensionIDs(audioLevel: atForwarder.compactMap(\.audioLevelExtensionID).first,
                                                     transportWideCC: atForwarder.compactMap(\.transportCCExtensionID).first)
        try forwarder.addParticipant(newcomer.name, sources: sources, extensions: newcomer.extensions, now: clock())
        newcomer.sender = try MediaSessionCore(
            configuration: MediaEngine.Configuration(
                streams: senderStreams, video: .testPattern(width: config.width, height: config.height, framesPerSecond: config.framesPerSecond),
                audio: .tone(frequency: 440), videoBitrateKbps: config.videoBitrateKbps,
                audioSSRC: own.audio, videoSSRC: own.video, rtxSSRC: own.rtx, cname: newcomer.name),
            clock: clock, sink: nil, random: &random) { [unowned newcomer] packet in
                newcomer.uplink.send(packet, size: Self.datagramSize(packet), now: clock())
            }
        for participant in existing + [newcomer] where !existing.isEmpty {
            try renegotiate(participant, forwarder: &forwarder, clock: clock, random: &random)
        }
    }

    /// The forwarder's renegotiation with `receiver` after a join (docs/rooms.md): its
    /// multistream offer (``JSEPOffer/makeForwarded(local:forwarded:)``: the receiver's own two
    /// sections, then one per stream of the others) answered by the receiver as any offer. New
    /// sections are bound at the forwarder; the receiver decodes each new sender's audio and video
    /// in a session of their own, demultiplexed by the SSRCs of the offer.
    private func renegotiate(_ receiver: Participant, forwarder: inout SelectiveForwarder,
                             clock: @escaping () -> Duration, random: inout SplitMixRandom) throws {
        let streams = forwarder.outgoingStreams(to: receiver.name)
        let fingerprint = SDPFingerprint(hashFunction: "sha-256", digest: [UInt8](repeating: 0, count: 32))
        let offer = try SessionDescription(parsing: JSEPOffer.makeForwarded(
            local: .init(iceUsernameFragment: "loop", icePassword: "simulated-link-no-ice-0", fingerprint: fingerprint, cname: "forwarder",
                         streamID: "forwarder", kinds: [], sending: [:], sessionID: random.next()),
            forwarded: streams.map { .init(kind: $0.kind.rawValue, ssrc: $0.ssrc, retransmissionSSRC: $0.retransmissionSSRC, streamID: $0.from) }
        ).serialized)
        let answer = try JSEPAnswer.make(offer: offer, local: .init(
            iceUsernameFragment: "loop", icePassword: "simulated-link-no-ice-0", fingerprint: fingerprint, cname: receiver.name,
            streamID: receiver.name, sending: ["audio": (receiver.own.audio, nil), "video": (receiver.own.video, receiver.own.rtx)],
            sessionID: random.next()))
        let atForwarder = try NegotiatedStream.fromOffering(offer: offer, answer: try SessionDescription(parsing: answer.serialized))
        let atReceiver = try NegotiatedStream.fromAnswering(offer: offer, answer: answer)
        // makeForwarded keeps the order of `streams` after the receiver's own two sections.
        guard atForwarder.count == streams.count + 2, atReceiver.count == streams.count + 2 else {
            throw MediaError(.negotiationFailed, "the forwarded offer to \(receiver.name) lost sections: \(atReceiver.count) of \(streams.count + 2)")
        }
        var newSenders: [String: [NegotiatedStream]] = [:]
        for (index, stream) in streams.enumerated() where stream.binding == nil {
            let negotiated = atForwarder[index + 2]
            try forwarder.bind(receiver: receiver.name, ssrc: stream.ssrc, ForwardingBinding(
                mid: negotiated.mid ?? String(index + 2), payloadType: negotiated.payloadType, retransmissionPayloadType: negotiated.rtxPayloadType))
            receiver.receiverBySSRC[stream.ssrc] = stream.from
            if let rtx = stream.retransmissionSSRC { receiver.receiverBySSRC[rtx] = stream.from }
            newSenders[stream.from, default: []].append(atReceiver[index + 2])
        }
        func ssrc() -> UInt32 { .random(in: 0x1000...UInt32.max, using: &random) }
        for (sender, sections) in newSenders.sorted(by: { $0.key < $1.key }) {
            receiver.receivers[sender] = try MediaSessionCore(
                configuration: MediaEngine.Configuration(
                    streams: sections, video: nil, audio: nil,
                    audioSSRC: ssrc(), videoSSRC: ssrc(), rtxSSRC: ssrc(), cname: "\(receiver.name)-\(sender)"),
                clock: clock, sink: nil, random: &random) { [unowned receiver] packet in
                    // Only feedback and reports: a receiving session sends no media.
                    receiver.uplink.send(packet, size: Self.datagramSize(packet), now: clock())
                }
        }
    }

    /// The packet's size on a link: IPv4 and UDP headers around it.
    private static func datagramSize(_ packet: MediaEngine.Packet) -> Int {
        switch packet {
        case .rtp(let bytes), .rtcp(let bytes): bytes.readableBytes + 28
        }
    }

    /// An offer that sends `sending` (audio and video) and its receive-only answer, as parsed by each side.
    /// The ICE and DTLS lines are placeholders: the simulated links stand in for both.
    private static func negotiate(sending: [String: (ssrc: UInt32, retransmissionSSRC: UInt32?)], offerer: String,
                                  random: inout SplitMixRandom) throws -> (offer: SessionDescription, answer: SessionDescription) {
        let fingerprint = SDPFingerprint(hashFunction: "sha-256", digest: [UInt8](repeating: 0, count: 32))
        let offer = try JSEPOffer.make(local: .init(
            iceUsernameFragment: "loop", icePassword: "simulated-link-no-ice-0", fingerprint: fingerprint, cname: offerer, streamID: offerer,
            kinds: ["audio", "video"], sending: sending, sessionID: random.next()))
        let offerReceived = try SessionDescription(parsing: offer.serialized)
        let answer = try JSEPAnswer.make(offer: offerReceived, local: .init(
            iceUsernameFragment: "loop", icePassword: "simulated-link-no-ice-0", fingerprint: fingerprint, cname: "answerer", streamID: "answerer",
            sending: [:], sessionID: random.next()))
        return (offerReceived, try SessionDescription(parsing: answer.serialized))
    }
}
