import NIOCore
import RTP
import Codecs

/// The receiving half of one VP8 stream: RTX unwrapping (RFC 4588), the ``VideoJitterBuffer``, the
/// decoder, RFC 3550 reception statistics and the feedback to send (NACK, PLI, receiver reports).
/// It reads the ``TestPatternCode`` back from every decoded picture that carries one.
///
/// Sans-IO: ``receive(_:now:)`` takes every RTP packet of the stream (and of its RTX stream);
/// ``feedback(now:)`` returns the RTCP packets due. Not `Sendable`: it owns a decoder.
public final class VideoReceiveStream {
    /// A decoded picture.
    public struct Picture: Sendable {
        /// The picture.
        public var frame: VideoFrame
        /// Its RTP timestamp.
        public var timestamp: UInt32
        /// The test-pattern code read from it, if it carries a readable one.
        public var pattern: TestPatternCode?
    }

    /// The media SSRC received.
    public let ssrc: UInt32
    /// This receiver's own SSRC, the sender SSRC of its feedback.
    public let localSSRC: UInt32
    /// The RTX stream's payload type and SSRC, when RTX is negotiated (RFC 4588 §8).
    public let rtx: (payloadType: UInt8, ssrc: UInt32)?
    /// The media payload type, restored on unwrapped RTX packets.
    public let payloadType: UInt8
    /// Where compressed frames are recorded, if anywhere.
    public var recorder: IVFFileWriter?
    /// The clock that stamps a picture when the decoder hands it back, for the latency read from
    /// the test pattern; `nil` stamps it with the arrival time given to ``receive(_:now:)``.
    public var decodeClock: (() -> Duration)?

    private var jitterBuffer: VideoJitterBuffer
    private let decoder: VP8Decoder
    private var reception: ReceptionStatistics
    private var statistics: StreamStatistics
    private var firstArrival: Duration?
    private var lastArrival: Duration?
    private var latencySum = 0.0
    private var latencyCount = 0

    /// Creates a stream.
    ///
    /// - Throws: ``CodecError`` when the decoder cannot be created.
    public init(ssrc: UInt32, payloadType: UInt8 = 96, localSSRC: UInt32, rtx: (payloadType: UInt8, ssrc: UInt32)? = nil,
                configuration: VideoJitterBuffer.Configuration = .init()) throws {
        self.ssrc = ssrc
        self.payloadType = payloadType
        self.localSSRC = localSSRC
        self.rtx = rtx
        self.jitterBuffer = VideoJitterBuffer(configuration: configuration)
        self.decoder = try VP8Decoder()
        self.reception = ReceptionStatistics(ssrc: ssrc, clockRate: VP8Encoder.clockRate)
        self.statistics = StreamStatistics(kind: "video", codec: "VP8")
    }

    /// The round-trip time that paces NACK retries and PLIs.
    public var roundTripTime: Duration {
        get { jitterBuffer.roundTripTime }
        set { jitterBuffer.roundTripTime = newValue }
    }

    /// Takes one RTP packet that arrived at `now` and returns the pictures it lets the decoder produce.
    /// Packets of other streams are ignored.
    public func receive(_ packet: RTPPacket, now: Duration) -> [Picture] {
        var media = packet
        var viaRTX = false
        if let rtx, packet.ssrc == rtx.ssrc, packet.payloadType == rtx.payloadType {
            guard let unwrapped = try? RTXPacket.unwrap(packet, originalPayloadType: payloadType, originalSSRC: ssrc) else { return [] }
            media = unwrapped
            viaRTX = true
        } else if packet.ssrc != ssrc {
            return []
        }
        if firstArrival == nil { firstArrival = now }
        lastArrival = now
        statistics.packets += 1
        statistics.bytes += RTPPacket.fixedHeaderSize + packet.payload.readableBytes
        let recoveredBefore = jitterBuffer.counters.recoveredByNACK
        let frames = jitterBuffer.insert(media, now: now, isRetransmission: viaRTX)
        let wasRequested = jitterBuffer.counters.recoveredByNACK > recoveredBefore
        // A retransmission's transit time says nothing about the network's jitter, and RFC 3550
        // loss counts what the network lost the first time.
        if !viaRTX && !wasRequested {
            reception.record(sequenceNumber: media.sequenceNumber, timestamp: media.timestamp, arrival: now)
        }
        var pictures: [Picture] = []
        for frame in frames {
            statistics.frames += 1
            if frame.isKeyframe { statistics.keyframes += 1 }
            try? recorder?.write(frame: frame.data, timestamp: frame.timestamp)
            do {
                guard let picture = try decoder.decode(frame.data) else { continue }
                if decoder.lastFrameCorrupted {
                    statistics.decodeErrors += 1
                    jitterBuffer.decodingFailed()
                }
                let pattern = TestPatternCode(reading: picture)
                if let pattern {
                    statistics.patternFrameNumbers.append(Int(pattern.frameNumber))
                    latencySum += (decodeClock?() ?? now).milliseconds - Double(pattern.sendTimeMilliseconds)
                    latencyCount += 1
                } else {
                    statistics.patternUnreadable += 1
                }
                pictures.append(Picture(frame: picture, timestamp: frame.timestamp, pattern: pattern))
            } catch {
                statistics.decodeErrors += 1
                jitterBuffer.decodingFailed()
            }
        }
        return pictures
    }

    /// The RTCP feedback due at `now`: a generic NACK (RFC 4585 §6.2.1) and/or a PLI (§6.3.1).
    public func feedback(now: Duration) -> [RTCPPacket] {
        let due = jitterBuffer.poll(now: now)
        var packets: [RTCPPacket] = []
        if !due.nack.isEmpty {
            packets.append(.nack(RTCPGenericNACK(senderSSRC: localSSRC, mediaSSRC: ssrc, lostSequenceNumbers: due.nack)))
        }
        if due.pictureLossIndication {
            packets.append(.pictureLossIndication(RTCPPictureLossIndication(senderSSRC: localSSRC, mediaSSRC: ssrc)))
        }
        return packets
    }

    /// When ``feedback(now:)`` next has something to say.
    public var nextDeadline: Duration? { jitterBuffer.nextDeadline }

    /// A receiver report (RFC 3550 §6.4.2) with this stream's report block; the fraction lost covers
    /// the time since the previous report, LSR/DLSR echo the last sender report.
    public func receiverReport(now: Duration) -> RTCPPacket {
        .receiverReport(RTCPReceiverReport(ssrc: localSSRC, reports: [reception.makeReportBlock(now: now)]))
    }

    /// Handles RTCP from the sender that arrived at `now`: a sender report is remembered for LSR/DLSR.
    public func handle(_ packet: RTCPPacket, now: Duration) {
        if case .senderReport(let report) = packet, report.ssrc == ssrc {
            reception.senderReportReceived(report, arrival: now)
        }
    }

    /// Statistics so far.
    public var currentStatistics: StreamStatistics {
        var result = statistics
        let counters = jitterBuffer.counters
        result.lost = Int(max(0, reception.cumulativeLost))
        result.recoveredByNACK = counters.recoveredByNACK
        result.nackRequests = counters.nackRequests
        result.lostForGood = counters.lostForGood
        result.pictureLossIndications = counters.pictureLossIndications
        result.jitterMilliseconds = reception.jitterSeconds * 1000
        if let firstArrival, let lastArrival, lastArrival > firstArrival {
            result.bitrateKbps = Double(statistics.bytes * 8) / (lastArrival - firstArrival).seconds / 1000
        }
        result.meanLatencyMilliseconds = latencyCount > 0 ? latencySum / Double(latencyCount) : 0
        return result
    }
}
