import Foundation
import NIOCore
import SDP
import RTP
import Codecs

/// Two media sessions of a call over simulated links, for `meshnode media-loop` and the
/// end-to-end tests: one side sends test-pattern video and tone audio, the other receives them,
/// and RTP/RTCP go through a lossy, reordering path in each direction. Both sides are the call's
/// own ``MediaSessionCore`` with streams negotiated by the call's offer/answer, so the loop
/// exercises exactly what a call runs: VP8/Opus → RTP → NACK/RTX/PLI and reports through RTCP →
/// jitter and playout buffers → decoders → the recording (`video.ivf`, `audio.wav`, `audio.opus`),
/// and with a bottleneck capacity set, the rate controller adapting both encoders to it through
/// transport-wide congestion control feedback and receiver reports.
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

    /// Runs the loop to the end and returns the statistics.
    ///
    /// - Throws: the error of the layer that failed (``SDPError`` for negotiation, ``CodecError`` for a codec or file).
    public func run() throws -> Report {
        let config = configuration
        var random = SplitMixRandom(seed: config.seed)
        let sides = try negotiate(random: &random)

        let linkConfiguration = SimulatedLink<MediaEngine.Packet>.Configuration(
            delay: config.delay, lossProbability: config.lossProbability,
            reorderProbability: config.reorderProbability, reorderDelay: config.reorderDelay)
        var forwardConfiguration = linkConfiguration
        forwardConfiguration.capacityBitsPerSecond = config.capacityBitsPerSecond
        var forward = SimulatedLink<MediaEngine.Packet>(configuration: forwardConfiguration, seed: config.seed)
        var backward = SimulatedLink<MediaEngine.Packet>(configuration: linkConfiguration, seed: config.seed &+ 1)

        var now = Duration.zero
        let clock = { now }
        let recorder = try config.outputDirectory.map { directory throws in
            try MediaRecorder(directory: directory, audio: true, opus: true, framesPerSecond: config.framesPerSecond)
        }
        let sink = LoopSink(recorder: recorder, width: config.width, height: config.height)
        let sender = try MediaSessionCore(configuration: sides.sender, clock: clock, sink: nil, random: &random) { packet in
            forward.send(packet, size: packet.datagramSize, now: now)
        }
        let receiver = try MediaSessionCore(configuration: sides.receiver, clock: clock, sink: sink, random: &random) { packet in
            backward.send(packet, size: packet.datagramSize, now: now)
        }

        let end = config.duration
        var capturing = true
        var targets: [Int] = []
        var nextTargetSample = Duration.seconds(1)
        // After the last frame, time for the repairs of its losses.
        while now <= end + .milliseconds(300) {
            if capturing, now > end {
                capturing = false
                sender.stopCapture()
                // The recording holds as much audio as was sent: the receiver's device clock runs on.
                sink.audioFrameLimit = sender.statistics(now: now).audio?.sentFrames ?? 0
            }
            for (packet, arrival) in forward.receive(now: now) { receiver.receive(packet, arrival: arrival) }
            for (packet, arrival) in backward.receive(now: now) { sender.receive(packet, arrival: arrival) }
            sender.advance(now: now)
            receiver.advance(now: now)
            if config.adaptBitrate, now >= nextTargetSample {
                targets.append(Int(sender.statistics(now: now).targetKbps ?? 0))
                nextTargetSample += .seconds(1)
            }
            now += .milliseconds(1)
        }
        sender.close()
        receiver.close()
        if let error = recorder?.error { throw error }

        let sent = sender.statistics(now: now)
        let sentVideo = sent.video ?? .init(kind: "video")
        var audio = receiver.receivedAudio
        audio.bitrateKbps = Double(audio.bytes * 8) / max(config.duration.seconds, 0.001) / 1000
        let bitrates = sender.encoderBitrates
        return Report(
            video: receiver.receivedVideo ?? StreamStatistics(kind: "video", codec: "VP8"), audio: audio,
            framesSent: sentVideo.sentFrames, keyframesSent: sentVideo.keyframesSent,
            retransmissions: sentVideo.retransmissions, keyframeRequests: sentVideo.keyframeRequestsReceived,
            meanPSNR: sink.meanPSNR, minimumPSNR: sink.minimumPSNR,
            packetsLostOnLinks: forward.counters.lostAtRandom + backward.counters.lostAtRandom, files: sink.files,
            targetKbpsPerSecond: targets, finalVideoKbps: bitrates.videoKbps ?? 0, finalAudioBitrate: bitrates.audio ?? 0,
            packetsDroppedByQueue: forward.counters.droppedByQueue, measuredRoundTripMilliseconds: sent.roundTripMilliseconds)
    }

    /// The two sides' engine settings from the offer/answer a call makes (JSEP, RFC 8829): the
    /// sender offers audio and video, the receiver answers receive-only, so payload types,
    /// header extension ids, feedback and the SSRCs each side learns come from the negotiation.
    /// The ICE and DTLS lines are placeholders: the simulated link stands in for both.
    private func negotiate(random: inout SplitMixRandom) throws -> (sender: MediaEngine.Configuration, receiver: MediaEngine.Configuration) {
        let config = configuration
        func ssrc() -> UInt32 { .random(in: 1...UInt32.max, using: &random) }
        let ssrcs = (sender: (audio: ssrc(), video: ssrc(), rtx: ssrc()), receiver: (audio: ssrc(), video: ssrc(), rtx: ssrc()))
        let ufrag = "loop", password = "simulated-link-no-ice-0"
        let fingerprint = SDPFingerprint(hashFunction: "sha-256", digest: [UInt8](repeating: 0, count: 32))
        let offer = try JSEPOffer.make(local: .init(
            iceUsernameFragment: ufrag, icePassword: password, fingerprint: fingerprint, cname: "sender", streamID: "sender",
            kinds: ["audio", "video"], sending: ["audio": (ssrcs.sender.audio, nil), "video": (ssrcs.sender.video, ssrcs.sender.rtx)],
            sessionID: random.next()))
        let offerReceived = try SessionDescription(parsing: offer.serialized)
        let answer = try JSEPAnswer.make(offer: offerReceived, local: .init(
            iceUsernameFragment: ufrag, icePassword: password, fingerprint: fingerprint, cname: "receiver", streamID: "receiver",
            sending: [:], sessionID: random.next()))
        var senderStreams = try NegotiatedStream.fromOffering(offer: offer, answer: try SessionDescription(parsing: answer.serialized))
        var receiverStreams = try NegotiatedStream.fromAnswering(offer: offerReceived, answer: answer)
        if !config.useRTX {
            // As with a peer that does not do RFC 4588: retransmissions resend the original packets.
            for index in senderStreams.indices { senderStreams[index].rtxPayloadType = nil }
            for index in receiverStreams.indices { receiverStreams[index].rtxPayloadType = nil }
        }
        let sender = MediaEngine.Configuration(
            streams: senderStreams, video: .testPattern(width: config.width, height: config.height, framesPerSecond: config.framesPerSecond),
            audio: .tone(frequency: 440), videoBitrateKbps: config.videoBitrateKbps, audioBitrate: config.audioBitrate,
            audioSSRC: ssrcs.sender.audio, videoSSRC: ssrcs.sender.video, rtxSSRC: ssrcs.sender.rtx, cname: "sender",
            adaptsBitrate: config.adaptBitrate)
        let receiver = MediaEngine.Configuration(
            streams: receiverStreams, video: nil, audio: nil,
            audioSSRC: ssrcs.receiver.audio, videoSSRC: ssrcs.receiver.video, rtxSSRC: ssrcs.receiver.rtx, cname: "receiver",
            jitterBuffer: .init(nack: .init(maxRetries: config.maxNACKRetries)))
        return (sender, receiver)
    }
}

/// The receiving side's sink in the loop: the recording, when asked for, and the luma PSNR of
/// every decoded picture against the picture the sender drew for that frame number.
private final class LoopSink: MediaSink {
    private let recorder: MediaRecorder?
    private let width: Int
    private let height: Int
    /// Audio frames to record at most, once the sender has stopped.
    var audioFrameLimit: Int?
    private var psnr = (sum: 0.0, count: 0, minimum: Double.infinity)

    /// Luma PSNR in dB over the pictures measured, 0 before any.
    var meanPSNR: Double { psnr.count > 0 ? psnr.sum / Double(psnr.count) : 0 }
    var minimumPSNR: Double { psnr.count > 0 ? psnr.minimum : 0 }

    init(recorder: MediaRecorder?, width: Int, height: Int) {
        self.recorder = recorder
        self.width = width
        self.height = height
    }

    func videoRecording() -> IVFFileWriter? { recorder?.videoRecording() }

    func decoded(_ picture: VideoReceiveStream.Picture) {
        recorder?.decoded(picture)
        guard let pattern = picture.pattern,
              let reference = try? TestPatternVideoSource.picture(number: pattern.frameNumber, width: width, height: height,
                                                                  sendTimeMilliseconds: pattern.sendTimeMilliseconds),
              let value = picture.frame.lumaPSNR(against: reference), value.isFinite else { return }
        psnr.sum += value
        psnr.count += 1
        psnr.minimum = min(psnr.minimum, value)
    }

    func played(_ frame: AudioPlayoutBuffer.Frame) {
        guard let recorder, recorder.audioFramesWritten < audioFrameLimit ?? .max else { return }
        recorder.played(frame)
    }

    var files: [String] { recorder?.files ?? [] }

    func close() { recorder?.close() }
}

private extension MediaEngine.Packet {
    /// The packet's size on the link: IPv4 and UDP headers around it.
    var datagramSize: Int {
        switch self {
        case .rtp(let bytes), .rtcp(let bytes): bytes.readableBytes + 28
        }
    }
}
