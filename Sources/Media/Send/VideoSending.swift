import RTP
import Codecs

/// What a media session needs of its video sender: one stream (``VideoSendStream``) or a
/// simulcast group (``SimulcastVideoSendStream``).
protocol VideoSending: AnyObject {
    /// Encodes one picture and returns its packets.
    func send(_ picture: VideoFrame, timestamp: UInt32, now: Duration) throws -> [RTPPacket]
    /// Handles RTCP from the receiver; returns retransmissions.
    func handle(_ feedback: RTCPPacket, now: Duration) -> [RTPPacket]
    /// Counters of what was sent (all layers together).
    var counters: VideoSendStream.Counters { get }
    var measuredRoundTripTime: Duration? { get }
    /// Makes the next frame (of every layer) a key frame.
    func requestKeyframe()
    /// The video bitrate in kb/s (all layers together), and its change by the rate controller.
    var totalBitrateKbps: Int { get }
    func setTotalBitrate(kbps: Int) throws
    /// Sender reports (RFC 3550 §6.4.1) for what was sent.
    func senderReports(now: Duration) -> [RTCPPacket]
}

extension VideoSendStream: VideoSending {
    func requestKeyframe() { encoder.requestKeyframe() }
    var totalBitrateKbps: Int { encoder.configuration.bitrateKbps }
    func setTotalBitrate(kbps: Int) throws { try encoder.setBitrate(kbps: kbps) }
    func senderReports(now: Duration) -> [RTCPPacket] { counters.packets > 0 ? [senderReport(now: now)] : [] }
}

extension SimulcastVideoSendStream: VideoSending {}
