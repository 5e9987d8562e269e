import Foundation
import NIOCore
import RTP
import Codecs

/// The whole media pipeline in one process over simulated links, for `meshnode media-loop` and the
/// end-to-end tests: test-pattern video and tone audio → VP8/Opus → RTP → a lossy, reordering
/// path → NACK/PLI through RTCP on the way back → jitter buffer and playout buffer → decoders →
/// IVF/WAV files and per-stream statistics. With a bottleneck capacity set, the sender adapts both
/// encoders' bitrates to it through transport-wide congestion control feedback and receiver
/// reports (``SendSideBandwidthEstimator``).
///
/// Time is simulated (1 ms steps), so a run is repeatable for a seed and takes as long as the
/// encoding and decoding take, not the stream's duration.
public final class MediaLoop {
    /// What to run.
    public struct Configuration: Sendable {
        public var width: Int
        public var height: Int
        public var framesPerSecond: Int
        public var videoBitrateKbps: Int
        public var audioBitrate: Int
        /// Simulated duration.
        public var duration: Duration
        /// Random loss on both directions, 0–1.
        public var lossProbability: Double
        /// Share of packets delayed by up to ``reorderDelay``, 0–1.
        public var reorderProbability: Double
        public var reorderDelay: Duration
        /// One-way delay.
        public var delay: Duration
        /// Use RTX (RFC 4588) for retransmissions instead of resending the original packets.
        public var useRTX: Bool
        /// Where to write `video.ivf`, `audio.wav` and `audio.opus`; `nil` writes nothing.
        public var outputDirectory: String?
        /// Capacity of the forward path's bottleneck in bits per second; `nil` for unlimited.
        public var capacityBitsPerSecond: Double?
        /// Whether the sender adapts its bitrates (transport-cc, RR loss) or keeps the configured ones.
        public var adaptBitrate: Bool
        /// NACKs sent for one packet before it is given up and a PLI asks for a keyframe.
        public var maxNACKRetries: Int
        /// Seed of the link's random choices.
        public var seed: UInt64

        /// Creates a configuration: 320×240 at 30 fps, 600 kb/s, 5 s, 5 % loss and 5 % reordering.
        public init(width: Int = 320, height: Int = 240, framesPerSecond: Int = 30, videoBitrateKbps: Int = 600, audioBitrate: Int = 32_000,
                    duration: Duration = .seconds(5), lossProbability: Double = 0.05, reorderProbability: Double = 0.05,
                    reorderDelay: Duration = .milliseconds(15), delay: Duration = .milliseconds(20), useRTX: Bool = true,
                    outputDirectory: String? = nil, capacityBitsPerSecond: Double? = nil, adaptBitrate: Bool = false,
                    maxNACKRetries: Int = 10, seed: UInt64 = 1) {
            self.width = width
            self.height = height
            self.framesPerSecond = framesPerSecond
            self.videoBitrateKbps = videoBitrateKbps
            self.audioBitrate = audioBitrate
            self.duration = duration
            self.lossProbability = lossProbability
            self.reorderProbability = reorderProbability
            self.reorderDelay = reorderDelay
            self.delay = delay
            self.useRTX = useRTX
            self.outputDirectory = outputDirectory
            self.capacityBitsPerSecond = capacityBitsPerSecond
            self.adaptBitrate = adaptBitrate
            self.maxNACKRetries = maxNACKRetries
            self.seed = seed
        }
    }

    /// What a run produced.
    public struct Report: Sendable, Codable {
        /// The received video stream.
        public var video: StreamStatistics
        /// The received audio stream.
        public var audio: StreamStatistics
        /// Frames the sender encoded, and keyframes among them.
        public var framesSent: Int
        public var keyframesSent: Int
        /// Retransmissions the sender made and PLIs/FIRs it answered.
        public var retransmissions: Int
        public var keyframeRequests: Int
        /// Luma PSNR of the decoded pictures against the pictures sent, in dB.
        public var meanPSNR: Double
        public var minimumPSNR: Double
        /// Packets the links lost (both directions, both media).
        public var packetsLostOnLinks: Int
        /// Files written.
        public var files: [String]
        /// The sender's total target bitrate (kb/s) at the end of each second, when it adapts.
        public var targetKbpsPerSecond: [Int]
        /// The VP8 and Opus bitrates in force at the end.
        public var finalVideoKbps: Int
        public var finalAudioBitrate: Int
        /// Packets the bottleneck queue dropped.
        public var packetsDroppedByQueue: Int
        /// The round-trip time the sender measured from SR/RR (RFC 3550 §6.4.1), in milliseconds.
        public var measuredRoundTripMilliseconds: Double?
    }

    /// The settings of the run.
    public let configuration: Configuration

    /// Creates a loop.
    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    private struct Datagram: Sendable {
        var bytes: ByteBuffer
    }

    /// Runs the loop to the end and returns the statistics.
    ///
    /// - Throws: ``CodecError`` when a codec or a file fails.
    public func run() throws -> Report {
        let config = configuration
        let videoSSRC: UInt32 = 0x1111_0001, rtxSSRC: UInt32 = 0x1111_0002, audioSSRC: UInt32 = 0x1111_0003, receiverSSRC: UInt32 = 0x2222_0001
        var source = try TestPatternVideoSource(width: config.width, height: config.height, framesPerSecond: config.framesPerSecond)
        let sender = try VideoSendStream(
            encoder: .init(width: config.width, height: config.height, bitrateKbps: config.videoBitrateKbps, framesPerSecond: config.framesPerSecond),
            payloadType: 96, ssrc: videoSSRC,
            retransmission: config.useRTX ? .rtx(payloadType: 97, ssrc: rtxSSRC, firstSequenceNumber: 1000) : .plain,
            firstSequenceNumber: 65_000, reservedExtensionBytes: 8)
        let receiver = try VideoReceiveStream(ssrc: videoSSRC, payloadType: 96, localSSRC: receiverSSRC,
                                              rtx: config.useRTX ? (97, rtxSSRC) : nil,
                                              configuration: .init(nack: .init(maxRetries: config.maxNACKRetries)))
        let rtt = config.delay * 2
        sender.roundTripTime = rtt
        receiver.roundTripTime = rtt

        var tones = try ToneAudioSource(channels: [[.init(frequency: 440, amplitude: 0.25), .init(frequency: 660, amplitude: 0.1)]])
        let audioEncoder = try OpusAudioEncoder(.init(bitrate: config.audioBitrate, application: .audio, inbandFEC: true,
                                                      expectedPacketLossPercent: max(1, Int(config.lossProbability * 100))))
        let playout = try AudioPlayoutBuffer()
        var audioStatistics = StreamStatistics(kind: "audio", codec: "opus")
        var audioReception = ReceptionStatistics(ssrc: audioSSRC, clockRate: OpusPayload.clockRate)

        let linkConfiguration = SimulatedLink<Datagram>.Configuration(
            delay: config.delay, lossProbability: config.lossProbability,
            reorderProbability: config.reorderProbability, reorderDelay: config.reorderDelay)
        var forwardConfiguration = linkConfiguration
        forwardConfiguration.capacityBitsPerSecond = config.capacityBitsPerSecond
        var forward = SimulatedLink<Datagram>(configuration: forwardConfiguration, seed: config.seed)
        var backward = SimulatedLink<Datagram>(configuration: linkConfiguration, seed: config.seed &+ 1)

        // Transport-wide congestion control: the sender numbers every packet (extension id 3), the
        // receiver reports arrivals every 50 ms.
        let transportExtensionID: UInt8 = 3
        let startBitrate = Double(config.videoBitrateKbps * 1000 + config.audioBitrate)
        var estimator = SendSideBandwidthEstimator(configuration: .init(
            startBitrate: startBitrate, minimumBitrate: 80_000, maximumBitrate: max(startBitrate * 4, 2_500_000)))
        estimator.roundTripTime = rtt
        var feedbackGenerator = TransportFeedbackGenerator(senderSSRC: receiverSSRC, mediaSSRC: videoSSRC)
        var nextTransportFeedback = Duration.milliseconds(50)
        var lastAllocation: BitrateAllocation?
        var targets: [Int] = []
        var nextTargetSample = Duration.seconds(1)

        var files: [String] = []
        var audioWriter: WAVFileWriter?
        var opusWriter: OggOpusFileWriter?
        if let directory = config.outputDirectory {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw MediaError(.io, "cannot create \(directory): \(error)")
            }
            let videoPath = (directory as NSString).appendingPathComponent("video.ivf")
            let audioPath = (directory as NSString).appendingPathComponent("audio.wav")
            receiver.recorder = try IVFFileWriter(path: videoPath, width: config.width, height: config.height, framesPerSecond: config.framesPerSecond)
            let opusPath = (directory as NSString).appendingPathComponent("audio.opus")
            audioWriter = try WAVFileWriter(path: audioPath)
            opusWriter = try OggOpusFileWriter(path: opusPath)
            files = [videoPath, audioPath, opusPath]
        }

        let frameInterval = Duration.seconds(1.0 / Double(config.framesPerSecond))
        let audioInterval = Duration.milliseconds(20)
        var nextVideo = Duration.zero
        var nextAudio = Duration.zero
        var nextPlayout = Duration.milliseconds(40)
        var nextReport = Duration.seconds(1)
        var nextSenderReport = Duration.milliseconds(500)
        var measuredRTT: Duration?
        var audioSequence: UInt16 = 30_000
        var audioFramesSent = 0
        var audioFramesWritten = 0
        var audioTimestamp: UInt32 = 0
        var psnrSum = 0.0, psnrCount = 0, psnrMinimum = Double.infinity
        let step = Duration.milliseconds(1)
        var now = Duration.zero
        let end = config.duration

        func transmit(_ packets: [RTPPacket], on link: inout SimulatedLink<Datagram>, at now: Duration) throws {
            for var packet in packets {
                if config.adaptBitrate {
                    let size = RTPPacket.fixedHeaderSize + packet.payload.readableBytes + 8 + 28
                    let sequence = estimator.packetSent(size: size, now: now)
                    packet.headerExtension = .compact([.transportSequenceNumber(id: transportExtensionID, sequence)])
                }
                let bytes = try packet.serialized()
                link.send(Datagram(bytes: bytes), size: bytes.readableBytes + 28, now: now)
            }
        }

        while now <= end + .milliseconds(300) {
            // Sender: capture and encode on the frame clock, Opus every 20 ms.
            if now >= nextVideo, now <= end {
                let picture = source.nextFrame(sendTimeMilliseconds: UInt64(now.milliseconds))
                let number = source.nextFrameNumber - 1
                try transmit(try sender.send(picture, timestamp: source.rtpTimestamp(of: number), now: now), on: &forward, at: now)
                nextVideo += frameInterval
            }
            if now >= nextAudio, now <= end {
                let payload = try audioEncoder.encode(tones.nextFrame())
                let packet = RTPPacket(payloadType: 111, sequenceNumber: audioSequence, timestamp: audioTimestamp, ssrc: audioSSRC, payload: payload)
                audioSequence &+= 1
                audioFramesSent += 1
                audioTimestamp &+= UInt32(OpusAudioEncoder.frameSize)
                try transmit([packet], on: &forward, at: now)
                nextAudio += audioInterval
            }
            // Receiver: packets that arrived, then feedback.
            for (datagram, arrival) in forward.receive(now: now) {
                if RTPPacket.isRTCP(datagram.bytes) {
                    for packet in (try? RTCPPacket.parseCompound(datagram.bytes)) ?? [] { receiver.handle(packet, now: arrival) }
                    continue
                }
                guard let packet = try? RTPPacket(parsing: datagram.bytes) else { continue }
                if let element = packet.headerExtension?.element(id: transportExtensionID), element.readableBytes == 2,
                   let sequence = element.getInteger(at: element.readerIndex, as: UInt16.self) {
                    feedbackGenerator.packetArrived(sequence: sequence, arrival: arrival)
                }
                if packet.ssrc == audioSSRC {
                    audioStatistics.packets += 1
                    audioStatistics.bytes += datagram.bytes.readableBytes
                    audioReception.record(sequenceNumber: packet.sequenceNumber, timestamp: packet.timestamp, arrival: arrival)
                    playout.insert(packet)
                    continue
                }
                for picture in receiver.receive(packet, now: arrival) {
                    guard let pattern = picture.pattern else { continue }
                    let reference = try TestPatternVideoSource.picture(number: pattern.frameNumber, width: config.width, height: config.height,
                                                                   sendTimeMilliseconds: pattern.sendTimeMilliseconds)
                    if let psnr = picture.frame.lumaPSNR(against: reference), psnr.isFinite {
                        psnrSum += psnr
                        psnrCount += 1
                        psnrMinimum = min(psnrMinimum, psnr)
                    }
                }
            }
            if now >= nextSenderReport {
                let report = try RTCPPacket.serializeCompound([sender.senderReport(now: now)])
                forward.send(Datagram(bytes: report), size: report.readableBytes + 28, now: now)
                nextSenderReport += .seconds(1)
            }
            var rtcp = receiver.feedback(now: now)
            if config.adaptBitrate, now >= nextTransportFeedback {
                if let feedback = feedbackGenerator.makeFeedback() { rtcp.append(.transportFeedback(feedback)) }
                nextTransportFeedback += .milliseconds(50)
            }
            if now >= nextReport {
                rtcp.append(receiver.receiverReport(now: now))
                nextReport += .seconds(1)
            }
            if !rtcp.isEmpty {
                let compound = try RTCPPacket.serializeCompound(rtcp)
                backward.send(Datagram(bytes: compound), size: compound.readableBytes + 28, now: now)
            }
            // Sender: feedback that arrived.
            for (datagram, arrival) in backward.receive(now: now) {
                guard let packets = try? RTCPPacket.parseCompound(datagram.bytes) else { continue }
                for packet in packets {
                    try transmit(sender.handle(packet, now: arrival), on: &forward, at: now)
                    if config.adaptBitrate { estimator.handle(packet, now: now) }
                }
                if let measured = sender.measuredRoundTripTime {
                    estimator.roundTripTime = measured
                    measuredRTT = measured
                }
                if config.adaptBitrate {
                    let allocation = BitrateAllocation(target: estimator.targetBitrate)
                    if allocation != lastAllocation {
                        try allocation.apply(video: sender.encoder, audio: audioEncoder)
                        lastAllocation = allocation
                    }
                }
            }
            if config.adaptBitrate, now >= nextTargetSample {
                targets.append(Int(estimator.targetBitrate / 1000))
                nextTargetSample += .seconds(1)
            }
            // The audio device's clock.
            if now >= nextPlayout {
                let frame = playout.nextFrame()
                // From the first sound to as many frames as were sent: the file is as long as the stream.
                if (frame.source != .silence || audioFramesWritten > 0), audioFramesWritten < audioFramesSent {
                    try audioWriter?.write(frame.pcm)
                    if let packet = frame.packet { try opusWriter?.write(packet: packet) }
                    audioFramesWritten += 1
                }
                nextPlayout += audioInterval
            }
            now += step
        }
        try receiver.recorder?.close()
        try audioWriter?.close()
        try opusWriter?.close()

        let counters = playout.counters
        audioStatistics.frames = counters.decoded + counters.recoveredByFEC + counters.concealed
        audioStatistics.recoveredByFEC = counters.recoveredByFEC
        audioStatistics.concealed = counters.concealed
        audioStatistics.decodeErrors = counters.decodeErrors
        audioStatistics.lost = Int(max(0, audioReception.cumulativeLost))
        audioStatistics.jitterMilliseconds = audioReception.jitterSeconds * 1000
        audioStatistics.bitrateKbps = Double(audioStatistics.bytes * 8) / max(config.duration.seconds, 0.001) / 1000
        return Report(
            video: receiver.currentStatistics, audio: audioStatistics,
            framesSent: sender.counters.frames, keyframesSent: sender.counters.keyframes,
            retransmissions: sender.counters.retransmissions, keyframeRequests: sender.counters.keyframeRequests,
            meanPSNR: psnrCount > 0 ? psnrSum / Double(psnrCount) : 0, minimumPSNR: psnrCount > 0 ? psnrMinimum : 0,
            packetsLostOnLinks: forward.counters.lostAtRandom + backward.counters.lostAtRandom, files: files,
            targetKbpsPerSecond: targets, finalVideoKbps: sender.encoder.configuration.bitrateKbps,
            finalAudioBitrate: audioEncoder.configuration.bitrate, packetsDroppedByQueue: forward.counters.droppedByQueue,
            measuredRoundTripMilliseconds: measuredRTT?.milliseconds)
    }
}
