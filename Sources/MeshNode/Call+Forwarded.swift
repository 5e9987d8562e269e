import Foundation
import Media
import MeshCore
import NIOCore
import RTP
import SDP
import Synchronization

/// The streams a participant of a forwarded room call receives from the forwarder (docs/protocol.md
/// "Room calls", *Forwarded mode*): one receive-only ``MediaEngine`` per other participant (its
/// own VP8 and Opus decoders), fed by the SSRCs the forwarder's signed offers announced.
///
/// Readable from the transport's receive task without the call's actor: the table is behind a
/// mutex, and a packet of an SSRC it does not hold is dropped (the forwarder may send only what
/// it offered).
final class ForwardedReceivers: Sendable {
    private struct State {
        var engines: [String: MediaEngine] = [:]
        var bySSRC: [UInt32: MediaEngine] = [:]
        var finals: [String: MediaSessionStatistics] = [:]
        /// The transport-wide sequence number extension id the forwarder's offers negotiated.
        var transportCCExtensionID: UInt8?
        var feedback: TransportFeedbackGenerator?
        var lastFeedback: Duration = .zero
        /// When each sender's engine started (Unix seconds).
        var started: [String: Double] = [:]
        /// The mid of each sender's first video section.
        var videoMids: [String: String] = [:]
    }
    private let state = Mutex(State())
    private let epoch = ContinuousClock.now
    /// The SSRC this participant reports from in its transport-cc feedback.
    private let reporterSSRC = UInt32.random(in: 1...UInt32.max)
    static let feedbackInterval: Duration = .milliseconds(100)

    /// The most senders a participant decodes (the forwarder's bound of participants, less itself).
    static let maxSenders = 19

    /// The engine of `ssrc`, if the forwarder offered it.
    func engine(forSSRC ssrc: UInt32) -> MediaEngine? {
        state.withLock { $0.bySSRC[ssrc] }
    }

    /// Takes an RTP packet from the forwarder: parses it once, notes its transport-wide sequence
    /// number for the transport-cc feedback, and returns the parsed packet for its sender's
    /// engine (`nil` if it does not parse) with the feedback when one is due (every 100 ms while
    /// packets arrive).
    ///
    /// The forwarder numbers everything it sends this participant with one transport-wide
    /// sequence (draft-holmer-rmcat-transport-wide-cc-extensions-01 §2), across all senders'
    /// streams, and picks this participant's simulcast layers from the estimate it builds of that
    /// feedback. So the feedback is made here, once for the transport, and not by each sender's
    /// engine: an engine sees only its sender's packets, and its feedback would report every other
    /// sender's packets lost — the forwarder's estimate collapsed and every receiver got the
    /// lowest layer.
    /// `arrival` is when the packet came off the socket: the feedback reports that time, and is
    /// due by the time it is read (now).
    func received(rtp bytes: ByteBuffer, arrival: ContinuousClock.Instant) -> (packet: RTPPacket, feedback: ByteBuffer?)? {
        guard let packet = try? RTPPacket(parsing: bytes) else { return nil }
        let feedback = state.withLock { state -> ByteBuffer? in
            guard let id = state.transportCCExtensionID, let element = packet.headerExtension?.element(id: id), element.readableBytes == 2,
                  let sequence = element.getInteger(at: element.readerIndex, as: UInt16.self) else { return nil }
            let now = ContinuousClock.now - epoch
            if state.feedback == nil { state.feedback = TransportFeedbackGenerator(senderSSRC: reporterSSRC, mediaSSRC: packet.ssrc) }
            state.feedback?.packetArrived(sequence: sequence, arrival: arrival - epoch)
            guard now - state.lastFeedback >= Self.feedbackInterval, let feedback = state.feedback?.makeFeedback() else { return nil }
            state.lastFeedback = now
            // RFC 3550 §6.1: a compound packet starts with a report.
            return try? RTCPPacket.serializeCompound([.receiverReport(RTCPReceiverReport(ssrc: reporterSSRC)), .transportFeedback(feedback)])
        }
        return (packet, feedback)
    }

    /// The transport-wide sequence number extension of the forwarder's streams (from its offer).
    func useTransportCC(extensionID: UInt8) { state.withLock { $0.transportCCExtensionID = extensionID } }

    /// Every receiving engine (RTCP goes to each: a sender report names its own SSRC).
    var engines: [MediaEngine] { state.withLock { Array($0.engines.values) } }

    /// The engine receiving `sender`, if there is one.
    func engine(of sender: String) -> MediaEngine? { state.withLock { $0.engines[sender] } }

    /// Whether another sender may be added.
    var isFull: Bool { state.withLock { $0.engines.count >= Self.maxSenders } }

    func add(_ engine: MediaEngine, for sender: String) {
        let now = Date().timeIntervalSince1970
        state.withLock {
            $0.engines[sender] = engine
            $0.started[sender] = now
        }
    }

    /// The mid of `sender`'s first video section (`mid` if it has none yet, which it becomes).
    func videoMid(of sender: String, mid: String) -> String? {
        state.withLock { state in
            if let first = state.videoMids[sender] { return first }
            guard state.videoMids.count < Self.maxSenders * 2 else { return nil }
            state.videoMids[sender] = mid
            return mid
        }
    }

    /// Forgets the first video mid of senders whose section is not among `live`.
    func keepVideoMids(_ live: Set<String>) {
        state.withLock { state in state.videoMids = state.videoMids.filter { live.contains($0.value) } }
    }

    /// When `sender`'s engine started (Unix seconds).
    func started(_ sender: String) -> Double? { state.withLock { $0.started[sender] } }

    func route(_ ssrcs: [UInt32], to engine: MediaEngine) {
        state.withLock { state in for ssrc in ssrcs { state.bySSRC[ssrc] = engine } }
    }

    /// The statistics of each sender now (or at the end), by sender.
    var statistics: [String: MediaSessionStatistics] {
        state.withLock { state in
            var result = state.finals
            for (sender, engine) in state.engines where result[sender] == nil { result[sender] = engine.statistics }
            return result
        }
    }

    /// Stops every engine and keeps their last statistics.
    func stop() async {
        let engines = state.withLock { state in
            let engines = state.engines
            state.engines = [:]
            state.bySSRC = [:]
            return engines
        }
        for (sender, engine) in engines {
            let final = await engine.stop()
            state.withLock { $0.finals[sender] = final }
        }
    }
}

/// What a participant of a forwarded call decoded of one other participant (`meshnode call
/// '#room' --json`, docs/calls.md).
public struct ForwardedReception: Codable, Sendable {
    /// The sender, as the forwarder names it (its `msid` stream id).
    public var from: String
    public var streams: [MediaSessionStatistics.Stream]
    /// When the first video frame of this sender was decoded (Unix seconds; after a forwarder
    /// failover, how soon the new forwarder brought it back).
    public var firstFrameAt: Double? = nil
}

extension Call {
    /// Whether a call to a forwarder decoded at least `frames` frames of every stream it
    /// receives of each of `count` other participants (`meshnode call --until-decoded`).
    public func hasDecoded(frames: Int, fromSenders count: Int) -> Bool {
        guard forwarded else { return false }
        let done = forwardedStatistics.values.filter { statistics in
            let streams = [statistics.audio, statistics.video].compactMap { $0 }.filter(\.receiving)
            return !streams.isEmpty && streams.allSatisfy { $0.receivedFrames >= frames }
        }
        return done.count >= count
    }

    /// A forwarder's subsequent offer answered (``answerRenegotiation(_:)``): each new `sendonly`
    /// section is received, grouped by its `msid` stream id (the other participant), in that
    /// participant's engine (one VP8 and one Opus decoder), started at its first section.
    func receiveForwardedStreams(offer: SessionDescription, negotiated: [NegotiatedStream]) -> [String] {
        guard let transport else { return [] }
        var added: [String] = []
        // A sender's video section withdrawn (it left and came back, say) is no longer its first.
        forwardedReceivers.keepVideoMids(Set(offer.media.filter { $0.port != 0 }.compactMap(\.mid)))
        for var stream in negotiated where stream.receives {
            // The transport's feedback is made once, by ``ForwardedReceivers/received(rtp:arrival:)``.
            if stream.transportCC, let id = stream.transportCCExtensionID { forwardedReceivers.useTransportCC(extensionID: id) }
            stream.transportCC = false
            guard let mid = stream.mid, let section = offer.media.first(where: { $0.mid == mid }),
                  var sender = Self.streamID(of: section) else { continue }
            // A second video of one sender (a screen share beside its camera, docs/rooms.md
            // "Added streams") is decoded by an engine of its own, reported as `sender#mid`.
            if stream.kind == "video", let first = forwardedReceivers.videoMid(of: sender, mid: mid), first != mid { sender += "#\(mid)" }
            let ssrcs = section.ssrcs
            if let engine = forwardedReceivers.engine(of: sender) {
                engine.startReceiving(stream)
                forwardedReceivers.route(ssrcs, to: engine)
                continue
            }
            guard !forwardedReceivers.isFull else {
                logger.notice("call \(id): more than \(ForwardedReceivers.maxSenders) senders offered; \(sender) is not decoded")
                continue
            }
            let engine = MediaEngine(configuration: .init(
                streams: [stream], video: nil, audio: nil, recordDirectory: options.recordDirectory,
                recordPrefix: "\(Self.fileSafe(sender))-\(Self.fileName(ofCallID: id))-",
                audioSSRC: UInt32.random(in: 1...UInt32.max), videoSSRC: UInt32.random(in: 1...UInt32.max),
                rtxSSRC: UInt32.random(in: 1...UInt32.max), cname: streamID)) { outgoing in
                // A receiving engine sends only feedback and reports (RFC 4585) for its streams.
                if case .rtcp(let packet) = outgoing { try? transport.sendRTCP(packet) }
            }
            do {
                try engine.start()
            } catch {
                logger.warning("call \(id): no decoder for \(sender): \(error.errorReason)")
                continue
            }
            forwardedReceivers.add(engine, for: sender)
            forwardedReceivers.route(ssrcs, to: engine)
            added.append(sender)
        }
        return added
    }

    /// The `msid` stream id of a section, else the CNAME of its first `a=ssrc`.
    static func streamID(of section: MediaDescription) -> String? {
        for attribute in section.attributes {
            if case .msid(let msid) = attribute, msid.streamID != "-" { return String(msid.streamID.prefix(200)) }
        }
        for attribute in section.attributes {
            if case .ssrc(let source) = attribute, source.attribute == "cname", let value = source.value { return String(value.prefix(200)) }
        }
        return nil
    }

    /// What this participant decoded of each other participant, by sender.
    public var forwardedStatistics: [String: MediaSessionStatistics] { forwardedReceivers.statistics }

    /// The rids of the VP8 simulcast layers a forwarded participant sends, lowest quality first:
    /// a quarter, a half and the whole picture per side (docs/rooms.md "Simulcast and layer
    /// choice"), so that the forwarder can send each receiver what its downlink carries.
    static let forwardedSimulcastRIDs = ["q", "h", "f"]

    /// What this side's offer sends as video simulcast (RFC 8853 §5.2): the three layers in a call
    /// to a forwarder that sends video, nothing in a pairwise call (its one receiver's estimate
    /// drives the one encoder directly).
    var offeredSimulcastRIDs: [String] { forwarded && videoSource != nil ? Self.forwardedSimulcastRIDs : [] }

    /// Whether the negotiated video is sent as simulcast (the forwarder's answer took the layers).
    var sendsSimulcast: Bool { streams.contains { $0.kind == "video" && $0.sends && !$0.simulcastRIDs.isEmpty } }

    /// One SSRC and one RTX SSRC per layer. They are named in no SDP: every packet carries its
    /// layer's rid (RFC 8852), from which the forwarder learns them.
    static func makeSimulcastSSRCs() -> [(ssrc: UInt32, retransmissionSSRC: UInt32)] {
        forwardedSimulcastRIDs.map { _ in (UInt32.random(in: 1...UInt32.max), UInt32.random(in: 1...UInt32.max)) }
    }
}
