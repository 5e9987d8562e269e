import Foundation
import NIOCore
import RTP
import Codecs

/// One side's media session: every codec, buffer and timer of it, sans-IO and driven by a clock.
/// Packets come in through ``receive(_:arrival:)`` and leave through `send`; ``advance(now:)``
/// does what is due. ``MediaEngine`` drives it on its own thread with the wall clock and
/// DTLS-SRTP behind `send`; ``MediaLoop`` drives two of them with a simulated clock over
/// simulated links. Not thread-safe: one thread at a time.
final class MediaSessionCore {
    private let configuration: MediaEngine.Configuration
    private let clock: () -> Duration
    private let send: (MediaEngine.Packet) -> Void
    private let sink: (any MediaSink)?
    private let start: Duration

    // Sending.
    private var videoSender: (stream: NegotiatedStream, sender: any VideoSending, source: any LiveVideoSource, interval: Duration)?
    private var audioSender: (stream: NegotiatedStream, encoder: OpusAudioEncoder, source: any LiveAudioSource)?
    private var capturing = true
    private var audioSequence: UInt16
    private var audioTimestamp: UInt32
    private var audioSent = (packets: 0, bytes: 0, frames: 0)
    private var nextVideo: Duration
    private var nextAudio: Duration
    private var estimator: SendSideBandwidthEstimator
    private var lastAllocation: BitrateAllocation?

    // Receiving.
    private var videoIn: NegotiatedStream?
    /// The negotiated streams: the configuration's, and a video stream a renegotiation added.
    private var streams: [NegotiatedStream]
    private let audioIn: NegotiatedStream?
    private var videoReceiver: VideoReceiveStream?
    private let playout: AudioPlayoutBuffer
    private var audioReception: ReceptionStatistics?
    private var audioReceived = (packets: 0, bytes: 0)
    private var feedbackGenerator: TransportFeedbackGenerator?
    private let localSSRC: UInt32
    private var pictureSize: (width: Int, height: Int)?
    private var firstVideoFrame: Duration?
    /// The transport-wide sequence number extension id of incoming packets, when negotiated.
    private let transportCCExtensionID: UInt8?

    // Timers.
    private var nextPlayout: Duration
    private var nextReport: Duration
    private var nextTransportFeedback: Duration
    private var meter = RateMeter()

    /// Opens the sources and codecs of what `configuration` sends.
    ///
    /// - Parameters:
    ///   - clock: The session's time, read when it needs a fresh one (after an encode, at a decode).
    ///   - sink: Where received media goes besides the statistics (a recording), if anywhere.
    ///   - random: The initial RTP sequence numbers and timestamps (RFC 3550 §5.1), so a simulated run can repeat.
    ///   - send: Where RTP and RTCP packets go out.
    /// - Throws: ``CodecError`` or ``MediaError`` when a source or codec cannot be opened.
    init(configuration: MediaEngine.Configuration, clock: @escaping () -> Duration, sink: (any MediaSink)?,
         random: inout some RandomNumberGenerator, send: @escaping (MediaEngine.Packet) -> Void) throws {
        self.configuration = configuration
        self.clock = clock
        self.sink = sink
        self.send = send
        start = clock()
        let streams = configuration.streams
        self.streams = streams
        let videoStream = streams.first { $0.kind == "video" }
        let audioStream = streams.first { $0.kind == "audio" }
        videoIn = videoStream?.receives == true ? videoStream : nil
        audioIn = audioStream?.receives == true ? audioStream : nil
        localSSRC = videoStream?.sends == true ? configuration.videoSSRC : configuration.audioSSRC
        transportCCExtensionID = (videoIn?.transportCC == true ? videoIn?.transportCCExtensionID : nil)
            ?? (audioIn?.transportCC == true ? audioIn?.transportCCExtensionID : nil)
        audioSequence = .random(in: 0...UInt16.max, using: &random)
        audioTimestamp = .random(in: 0...UInt32.max, using: &random)
        nextVideo = start
        nextAudio = start
        nextPlayout = start + .milliseconds(60)
        nextReport = start + .milliseconds(500)
        nextTransportFeedback = start + .milliseconds(100)
        let startBitrate = Double(configuration.videoBitrateKbps * 1000 + configuration.audioBitrate)
        estimator = SendSideBandwidthEstimator(configuration: .init(
            startBitrate: startBitrate, minimumBitrate: 80_000, maximumBitrate: Double(max(configuration.maximumBitrateKbps * 1000, Int(startBitrate)))))
        playout = try AudioPlayoutBuffer()

        if let videoStream, videoStream.sends, let spec = configuration.video {
            let source = try spec.open()
            let rtx: RetransmissionHistory.Mode = if let pt = videoStream.rtxPayloadType {
                .rtx(payloadType: pt, ssrc: configuration.rtxSSRC, firstSequenceNumber: .random(in: 0...UInt16.max, using: &random))
            } else { .plain }
            let encoder = VP8Encoder.Configuration(width: source.width, height: source.height, bitrateKbps: configuration.videoBitrateKbps,
                                                   framesPerSecond: spec.framesPerSecond, content: spec.content)
            let sender: any VideoSending
            if !videoStream.simulcastRIDs.isEmpty {
                // The answer's rids (lowest first) with this side's SSRCs for them (RFC 8853).
                let layers = try videoStream.simulcastRIDs.enumerated().map { index, rid throws(MediaError) in
                    guard index < configuration.simulcastSSRCs.count else {
                        throw MediaError(.negotiationFailed, "simulcast layer \(rid) has no SSRC in the configuration (\(configuration.simulcastSSRCs.count) given)")
                    }
                    let ssrcs = configuration.simulcastSSRCs[index]
                    return SimulcastLayer(rid: rid, ssrc: ssrcs.ssrc, retransmissionSSRC: ssrcs.retransmissionSSRC)
                }
                sender = try SimulcastVideoSendStream(
                    layers: layers, encoder: encoder, payloadType: videoStream.payloadType, retransmissionPayloadType: videoStream.rtxPayloadType,
                    ridExtensionID: videoStream.ridExtensionID, repairedRIDExtensionID: videoStream.repairedRIDExtensionID,
                    reservedExtensionBytes: videoStream.transportCCExtensionID == nil ? 0 : 8, random: &random)
            } else {
                sender = try VideoSendStream(
                    encoder: encoder, payloadType: videoStream.payloadType, ssrc: configuration.videoSSRC, retransmission: rtx,
                    firstSequenceNumber: .random(in: 0...UInt16.max, using: &random),
                    reservedExtensionBytes: videoStream.transportCCExtensionID == nil ? 0 : 8)
            }
            videoSender = (videoStream, sender, source, .seconds(1.0 / Double(spec.framesPerSecond)))
        }
        if let audioStream, audioStream.sends, let spec = configuration.audio {
            // In-band FEC only when the peer said it decodes it (RFC 7587 §6.1, `useinbandfec=1`).
            let encoder = try OpusAudioEncoder(.init(bitrate: configuration.audioBitrate, application: .voip, inbandFEC: audioStream.opusFEC,
                                                     expectedPacketLossPercent: 5))
            audioSender = (audioStream, encoder, try spec.open())
        }
    }

    /// Takes one RTP or compound RTCP packet that arrived at `arrival`.
    func receive(_ packet: MediaEngine.Packet, arrival: Duration) {
        switch packet {
        case .rtp(let bytes):
            guard let packet = try? RTPPacket(parsing: bytes) else { return }
            handleRTP(packet, size: bytes.readableBytes, now: arrival)
        case .rtcp(let bytes): handleRTCP(bytes, now: arrival)
        }
    }

    /// Takes one RTP packet parsed by the caller, `size` bytes as received, that arrived at `arrival`.
    func receive(parsed packet: RTPPacket, size: Int, arrival: Duration) {
        handleRTP(packet, size: size, now: arrival)
    }

    /// Asks the video encoder for a keyframe (after an ICE restart, say).
    /// A renegotiation added a stream this side receives (the peer's screen share added to an
    /// audio call, RFC 8829 §5.2.2): its packets are taken from now on. Only video can be
    /// added (audio is in every call from the start); a stream already received stays as it is.
    func startReceiving(_ stream: NegotiatedStream) {
        guard stream.kind == "video", stream.receives, videoIn == nil else { return }
        videoIn = stream
        if let index = streams.firstIndex(where: { $0.kind == stream.kind }) {
            streams[index].receives = true
            streams[index].remoteSSRCs = stream.remoteSSRCs
        } else {
            streams.append(stream)
        }
    }

    func requestKeyframe() {
        videoSender?.sender.requestKeyframe()
    }

    /// Stops capturing and encoding for good; retransmissions and RTCP go on, so the last frames
    /// sent can still be repaired.
    func stopCapture() {
        capturing = false
    }

    /// Does what is due at `now`: captures, encodes and sends, plays 20 ms of audio, sends
    /// feedback and reports. Returns when a frame or a report is next due; NACKs and PLIs may be
    /// due earlier, so a driver comes back within a few milliseconds.
    @discardableResult
    func advance(now: Duration) -> Duration {
        sendMedia(now: now)
        playAudio(now: now)
        // Fresh time: an encode may have taken milliseconds, and reports carry send times (RFC 3550 §6.4).
        sendFeedback(now: clock())
        var due = [nextReport, nextTransportFeedback]
        if capturing, videoSender != nil { due.append(nextVideo) }
        if capturing, audioSender != nil { due.append(nextAudio) }
        if audioIn != nil { due.append(nextPlayout) }
        return due.min()!
    }

    // MARK: - Sending

    /// RFC 6464 §3 with RFC 6465 §4's measure: the frame's RMS in −dBov (0 is a full-scale
    /// square wave, 127 silence or quieter).
    static func audioLevel(of pcm: [Int16]) -> UInt8 {
        guard !pcm.isEmpty else { return 127 }
        var sum = 0.0
        for sample in pcm { sum += Double(sample) * Double(sample) }
        let rms = (sum / Double(pcm.count)).squareRoot() / 32_768
        guard rms > 0 else { return 127 }
        return UInt8(min(127, max(0, (-20 * log10(rms)).rounded())))
    }

    private func sendMedia(now: Duration) {
        guard capturing else { return }
        if let (stream, sender, source, interval) = videoSender, now >= nextVideo {
            // After a stall (the machine was busy) skip ahead rather than burst frames.
            nextVideo = max(nextVideo + interval, now - interval)
            do {
                let picture = try source.nextFrame(sendTimeMilliseconds: UInt64(now.milliseconds))
                let packets = try sender.send(picture, timestamp: source.lastTimestamp, now: now)
                transmit(packets, stream: stream, now: now)
            } catch {
                // A frame the source or encoder refused is skipped; the next one tries again.
            }
        }
        if let (stream, encoder, source) = audioSender, now >= nextAudio {
            nextAudio = max(nextAudio + .milliseconds(20), now - .milliseconds(20))
            do {
                let pcm = try source.nextFrame()
                let payload = try encoder.encode(pcm)
                let packet = RTPPacket(payloadType: stream.payloadType, sequenceNumber: audioSequence, timestamp: audioTimestamp,
                                       ssrc: configuration.audioSSRC, payload: payload)
                audioSequence &+= 1
                audioTimestamp &+= UInt32(OpusAudioEncoder.frameSize)
                audioSent.frames += 1
                audioSent.packets += 1
                audioSent.bytes += RTPPacket.fixedHeaderSize + payload.readableBytes
                transmit([packet], stream: stream, now: now, audioLevel: stream.audioLevelExtensionID == nil ? nil : Self.audioLevel(of: pcm))
            } catch {}
        }
    }

    private func transmit(_ packets: [RTPPacket], stream: NegotiatedStream, now: Duration, audioLevel: UInt8? = nil) {
        for var packet in packets {
            // After the elements already there (a simulcast layer's rid, RFC 8852).
            var elements: [RTPHeaderExtensionElement] = packet.headerExtension?.elements ?? []
            if let id = stream.audioLevelExtensionID, let audioLevel {
                // RFC 6464 §3; no voice-activity detection here: the flag is left clear.
                elements.append(.audioLevel(id: id, level: audioLevel, voiceActivity: false))
            }
            if let id = stream.transportCCExtensionID {
                let size = RTPPacket.fixedHeaderSize + packet.payload.readableBytes + 8 + 16 + 28
                elements.append(.transportSequenceNumber(id: id, estimator.packetSent(size: size + elements.count * 4, now: now)))
            }
            if !elements.isEmpty { packet.headerExtension = .compact(elements) }
            guard let bytes = try? packet.serialized() else { continue }
            meter.sent[packet.ssrc == configuration.audioSSRC ? 0 : 1] += bytes.readableBytes
            send(.rtp(bytes))
        }
    }

    // MARK: - Receiving

    private func handleRTP(_ packet: RTPPacket, size: Int, now: Duration) {
        if let id = transportCCExtensionID,
           let element = packet.headerExtension?.element(id: id), element.readableBytes == 2,
           let sequence = element.getInteger(at: element.readerIndex, as: UInt16.self) {
            if feedbackGenerator == nil { feedbackGenerator = TransportFeedbackGenerator(senderSSRC: localSSRC, mediaSSRC: packet.ssrc) }
            feedbackGenerator?.packetArrived(sequence: sequence, arrival: now)
        }
        if let audio = audioIn, packet.payloadType == audio.payloadType {
            audioReceived.packets += 1
            audioReceived.bytes += size
            meter.received[0] += size
            if audioReception == nil { audioReception = ReceptionStatistics(ssrc: packet.ssrc, clockRate: OpusPayload.clockRate) }
            audioReception?.record(sequenceNumber: packet.sequenceNumber, timestamp: packet.timestamp, arrival: now)
            playout.insert(packet)
            return
        }
        guard let video = videoIn, packet.payloadType == video.payloadType || packet.payloadType == video.rtxPayloadType else { return }
        meter.received[1] += size
        if videoReceiver == nil {
            // The SSRCs the peer announced (media first, then its FID repair stream), or the first one seen.
            let mediaSSRC = video.remoteSSRCs.first ?? packet.ssrc
            guard packet.payloadType == video.payloadType || !video.remoteSSRCs.isEmpty else { return }
            let rtx: (UInt8, UInt32)? = if let pt = video.rtxPayloadType, video.remoteSSRCs.count > 1 { (pt, video.remoteSSRCs[1]) } else { nil }
            videoReceiver = try? VideoReceiveStream(ssrc: mediaSSRC, payloadType: video.payloadType, localSSRC: localSSRC, rtx: rtx,
                                                    configuration: configuration.jitterBuffer)
            // Latency and setup count to the decoded picture, not to the packet that completed it.
            videoReceiver?.decodeClock = clock
            videoReceiver?.recorder = sink?.videoRecording()
        }
        guard let receiver = videoReceiver else { return }
        for picture in receiver.receive(packet, now: now) {
            if firstVideoFrame == nil { firstVideoFrame = clock() }
            pictureSize = (picture.frame.width, picture.frame.height)
            sink?.decoded(picture)
        }
    }

    private func handleRTCP(_ bytes: ByteBuffer, now: Duration) {
        guard let packets = try? RTCPPacket.parseCompound(bytes) else { return }
        for packet in packets {
            videoReceiver?.handle(packet, now: now)
            if case .senderReport(let report) = packet, report.ssrc == audioReception?.ssrc {
                audioReception?.senderReportReceived(report, arrival: now)
            }
            if let video = videoSender {
                transmit(video.sender.handle(packet, now: now), stream: video.stream, now: now)
            }
            _ = estimator.handle(packet, now: now)
        }
        if let measured = videoSender?.sender.measuredRoundTripTime {
            estimator.roundTripTime = measured
            videoReceiver?.roundTripTime = measured
        }
        let allocation = BitrateAllocation(target: estimator.targetBitrate)
        if configuration.adaptsBitrate, allocation != lastAllocation {
            try? videoSender?.sender.setTotalBitrate(kbps: min(allocation.videoKbps, VP8Encoder.maximumBitrateKbps))
            try? audioSender?.encoder.setBitrate(allocation.audioBitrate)
            lastAllocation = allocation
        }
    }

    private func playAudio(now: Duration) {
        guard audioIn != nil, now >= nextPlayout else { return }
        nextPlayout = max(nextPlayout + .milliseconds(20), now - .milliseconds(20))
        // The device plays on whether or not anything records it.
        let frame = playout.nextFrame()
        sink?.played(frame)
    }

    // MARK: - RTCP out

    private func sendFeedback(now: Duration) {
        // Only the feedback the peer negotiated (RFC 4585 §4.2): generic NACK, PLI.
        var packets: [RTCPPacket] = (videoReceiver?.feedback(now: now) ?? []).filter { packet in
            switch packet {
            case .nack: videoIn?.nack == true
            case .pictureLossIndication: videoIn?.pictureLossIndication == true
            default: true
            }
        }
        if now >= nextTransportFeedback {
            if let feedback = feedbackGenerator?.makeFeedback() { packets.append(.transportFeedback(feedback)) }
            nextTransportFeedback = now + .milliseconds(100)
        }
        if now >= nextReport {
            nextReport = now + .seconds(1)
            sendReports(now: now)
        }
        guard !packets.isEmpty else { return }
        // A compound packet starts with a report (RFC 3550 §6.1); an empty RR keeps feedback small.
        if let compound = try? RTCPPacket.serializeCompound([.receiverReport(RTCPReceiverReport(ssrc: localSSRC))] + packets) {
            send(.rtcp(compound))
        }
    }

    /// Sender reports for what this side sends, one receiver report with a block per received
    /// stream, and the CNAME (RFC 3550 §6.1, §6.4).
    private func sendReports(now: Duration) {
        var packets: [RTCPPacket] = []
        if let video = videoSender { packets += video.sender.senderReports(now: now) }
        if audioSender != nil, audioSent.packets > 0 {
            packets.append(.senderReport(RTCPSenderReport(
                ssrc: configuration.audioSSRC, ntpTimestamp: RoundTripTimeEstimator.ntp(now), rtpTimestamp: audioTimestamp,
                packetCount: UInt32(truncatingIfNeeded: audioSent.packets), octetCount: UInt32(truncatingIfNeeded: audioSent.bytes))))
        }
        var blocks: [RTCPReportBlock] = []
        if let receiver = videoReceiver, case .receiverReport(let report) = receiver.receiverReport(now: now) { blocks += report.reports }
        if audioReception != nil, let block = audioReception?.makeReportBlock(now: now) { blocks.append(block) }
        if !blocks.isEmpty || packets.isEmpty { packets.append(.receiverReport(RTCPReceiverReport(ssrc: localSSRC, reports: blocks))) }
        packets.append(.sourceDescription(RTCPSourceDescription(chunks: [.init(ssrc: localSSRC, items: [.init(type: .cname, text: configuration.cname)])])))
        if let compound = try? RTCPPacket.serializeCompound(packets) { send(.rtcp(compound)) }
    }

    // MARK: - Statistics and shutdown

    /// Both directions of every stream now.
    func statistics(now: Duration) -> MediaSessionStatistics {
        var snapshot = MediaSessionStatistics()
        snapshot.elapsedMilliseconds = (now - start).milliseconds
        snapshot.firstVideoFrameMilliseconds = firstVideoFrame.map { ($0 - start).milliseconds }
        let rates = meter.rates(now: now)
        if let simulcast = videoSender?.sender as? SimulcastVideoSendStream {
            snapshot.simulcastLayers = zip(simulcast.layers, simulcast.layerCounters).map { layer, counters in
                .init(rid: layer.rid, frames: counters.frames, keyframes: counters.keyframes, bytes: counters.bytes)
            }
        }
        if let stream = streams.first(where: { $0.kind == "audio" }) {
            var audio = MediaSessionStatistics.Stream(kind: "audio")
            audio.sending = audioSender != nil
            audio.receiving = stream.receives
            audio.sentPackets = audioSent.packets
            audio.sentFrames = audioSent.frames
            audio.sentBytes = audioSent.bytes
            audio.setReceived(receivedAudio)
            (audio.sendKbps, audio.receiveKbps) = (rates.sent[0], rates.received[0])
            snapshot.audio = audio
        }
        if let stream = streams.first(where: { $0.kind == "video" }) {
            var video = MediaSessionStatistics.Stream(kind: "video")
            video.sending = videoSender != nil
            video.receiving = stream.receives
            if let sender = videoSender?.sender {
                video.sentPackets = sender.counters.packets
                video.sentFrames = sender.counters.frames
                video.sentBytes = sender.counters.bytes
                video.keyframesSent = sender.counters.keyframes
                video.retransmissions = sender.counters.retransmissions
                video.keyframeRequestsReceived = sender.counters.keyframeRequests
            }
            if let received = receivedVideo { video.setReceived(received) }
            video.width = pictureSize?.width
            video.height = pictureSize?.height
            (video.sendKbps, video.receiveKbps) = (rates.sent[1], rates.received[1])
            snapshot.video = video
        }
        snapshot.roundTripMilliseconds = videoSender?.sender.measuredRoundTripTime?.milliseconds
        snapshot.targetKbps = estimator.targetBitrate / 1000
        snapshot.files = sink?.files ?? []
        return snapshot
    }

    /// The received video stream in full, as the media loop reports it.
    var receivedVideo: StreamStatistics? { videoReceiver?.currentStatistics }

    /// The received audio stream in full: RFC 3550 loss and jitter, and what the playout buffer
    /// made of each 20 ms (decoded, recovered by FEC, concealed).
    var receivedAudio: StreamStatistics {
        var audio = StreamStatistics(kind: "audio", codec: "opus")
        let counters = playout.counters
        audio.packets = audioReceived.packets
        audio.bytes = audioReceived.bytes
        audio.frames = counters.decoded + counters.recoveredByFEC + counters.concealed
        audio.recoveredByFEC = counters.recoveredByFEC
        audio.concealed = counters.concealed
        audio.decodeErrors = counters.decodeErrors
        audio.lost = Int(max(0, audioReception?.cumulativeLost ?? 0))
        audio.jitterMilliseconds = (audioReception?.jitterSeconds ?? 0) * 1000
        return audio
    }

    /// The bitrates the encoders run at now: VP8 in kb/s, Opus in b/s.
    var encoderBitrates: (videoKbps: Int?, audio: Int?) {
        (videoSender?.sender.totalBitrateKbps, audioSender?.encoder.configuration.bitrate)
    }

    /// Closes the sink's files.
    func close() {
        sink?.close()
    }
}

/// Bytes sent and received per kind (0 audio, 1 video), turned into kb/s over the last second.
private struct RateMeter {
    var sent = [0, 0]
    var received = [0, 0]
    private var window: (time: Duration, sent: [Int], received: [Int])?
    private var last = (sent: [0.0, 0.0], received: [0.0, 0.0])

    mutating func rates(now: Duration) -> (sent: [Double], received: [Double]) {
        guard let window else {
            self.window = (now, sent, received)
            return last
        }
        let elapsed = (now - window.time).seconds
        guard elapsed >= 1 else { return last }
        last.sent = (0..<2).map { Double(sent[$0] - window.sent[$0]) * 8 / elapsed / 1000 }
        last.received = (0..<2).map { Double(received[$0] - window.received[$0]) * 8 / elapsed / 1000 }
        self.window = (now, sent, received)
        return last
    }
}
