import NIOCore
import Testing
@testable import Media
import RTP

/// A receiver whose estimate is below the floor (docs/rooms.md "A squeezed receiver"), without
/// sockets: alice, carol and dave each send a voice (RFC 6464 levels) and three VP8 layers; bob
/// receives. Time is simulated in 20 ms steps.
@Suite("A squeezed receiver: videos paused and voices withheld in speaking order, resumed at a key frame / with continuous numbers")
struct SqueezedReceiverTests {
    static let senders = ["alice", "carol", "dave"]
    static let videoPT: UInt8 = 96
    static let audioPT: UInt8 = 111
    static let senderIDs = ForwardingExtensionIDs(mid: 1, audioLevel: 2, transportWideCC: 3, rtpStreamID: 7, repairedRTPStreamID: 8)
    static let bobIDs = ForwardingExtensionIDs(mid: 4, audioLevel: 5, transportWideCC: 6)
    static let rids = ["q", "h", "f"]
    /// Payload bytes per packet of each layer (25 packets a second each): about 33, 73 and 193 kb/s with the overhead.
    static let layerPayload = [100, 300, 900]

    /// A sender's SSRCs: audio, then its three layers.
    static func audioSSRC(_ index: Int) -> UInt32 { UInt32(1000 * (index + 1)) }
    static func layerSSRC(_ index: Int, _ layer: Int) -> UInt32 { UInt32(1000 * (index + 1) + 1 + layer) }

    /// The call, and the packets of each sender as they go on.
    struct Room {
        var forwarder: SelectiveForwarder
        var now = Duration.zero
        var step = 0
        /// Each sender's level now (−dBov: 0 loudest, 127 silence).
        var levels: [String: UInt8] = ["alice": 127, "carol": 127, "dave": 127]
        var audioSequence: [UInt16] = [100, 200, 300]
        var videoSequence: [[UInt16]] = [[1000, 2000, 3000], [4000, 5000, 6000], [7000, 8000, 9000]]
        var pictureID: [[UInt16]] = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
        /// Layers asked for a key frame (a PLI went to their sender).
        var keyAsked: Set<UInt32> = []
        /// What bob got, per outgoing SSRC.
        var toBob: [UInt32: [RTPPacket]] = [:]
        /// bob's outgoing SSRC per (sender, kind).
        var bobStreams: [String: UInt32] = [:]
        var plis: [UInt32] = []

        init(configuration: ForwardingConfiguration = ForwardingConfiguration()) throws {
            forwarder = SelectiveForwarder(configuration: configuration)
            for (index, name) in SqueezedReceiverTests.senders.enumerated() {
                try forwarder.addParticipant(name, sources: [
                    ForwardedSource(kind: .audio, ssrc: SqueezedReceiverTests.audioSSRC(index), payloadType: SqueezedReceiverTests.audioPT),
                    .simulcast(rids: SqueezedReceiverTests.rids, payloadType: SqueezedReceiverTests.videoPT, retransmissionPayloadType: nil),
                ], extensions: SqueezedReceiverTests.senderIDs, now: .zero)
            }
            try forwarder.addParticipant("bob", sources: [ForwardedSource(kind: .audio, ssrc: 9000, payloadType: SqueezedReceiverTests.audioPT)],
                                         extensions: SqueezedReceiverTests.bobIDs, now: .zero)
            for stream in forwarder.outgoingStreams(to: "bob") {
                try forwarder.bind(receiver: "bob", ssrc: stream.ssrc, ForwardingBinding(
                    mid: "\(stream.from)-\(stream.kind.rawValue)", payloadType: stream.kind == .video ? 100 : 109))
                bobStreams["\(stream.from) \(stream.kind.rawValue)"] = stream.ssrc
            }
        }

        func bob(_ sender: String, _ kind: String) -> UInt32 { bobStreams["\(sender) \(kind)"]! }

        /// bob's estimate from now on (here set directly: a new estimator pinned at `bitsPerSecond`,
        /// standing for what his feedback would have said).
        mutating func setEstimate(_ bitsPerSecond: Double) {
            forwarder.participants["bob"]!.estimator = SendSideBandwidthEstimator(configuration: .init(
                startBitrate: bitsPerSecond, minimumBitrate: bitsPerSecond, maximumBitrate: bitsPerSecond, acknowledgedHeadroom: nil))
            forwarder.participants["bob"]!.congestionFeedback = true
        }

        /// Runs `duration` of the call: a voice packet of each sender every 20 ms, a packet of
        /// each layer every 40 ms (a key frame when the forwarder asked that layer for one).
        mutating func run(_ duration: Duration) throws {
            let end = now + duration
            while now < end {
                now += .milliseconds(20)
                step += 1
                for (index, name) in SqueezedReceiverTests.senders.enumerated() {
                    var payload = ByteBuffer()
                    payload.writeBytes(Array(repeating: UInt8(0x11), count: 160))
                    let audio = RTPPacket(payloadType: SqueezedReceiverTests.audioPT, sequenceNumber: audioSequence[index],
                                          timestamp: UInt32(step) * 960, ssrc: SqueezedReceiverTests.audioSSRC(index),
                                          headerExtension: .compact([RTPHeaderExtensionElement(id: 2, bytes: [levels[name]!])]), payload: payload)
                    audioSequence[index] &+= 1
                    collect(try forwarder.forward(audio, from: name, now: now))
                    guard step % 2 == 0 else { continue }
                    for layer in 0..<3 {
                        let ssrc = SqueezedReceiverTests.layerSSRC(index, layer)
                        let key = keyAsked.remove(ssrc) != nil || step % 100 == 0
                        let packet = SimulcastForwarderTests.layer(SqueezedReceiverTests.rids[layer], ssrc: ssrc, sequence: videoSequence[index][layer],
                                                                   timestamp: UInt32(step) * 1_800, pictureID: pictureID[index][layer], tl0: 0, key: key,
                                                                   payloadSize: SqueezedReceiverTests.layerPayload[layer])
                        videoSequence[index][layer] &+= 1
                        pictureID[index][layer] = (pictureID[index][layer] + 1) & 0x7FFF
                        collect(try forwarder.forward(packet, from: name, now: now))
                    }
                }
                collect(forwarder.tick(now: now))
            }
        }

        mutating func collect(_ outputs: [ForwarderOutput]) {
            for output in outputs {
                switch output {
                case .rtp("bob", let packet): toBob[packet.ssrc, default: []].append(packet)
                case .rtcp(_, let packets):
                    for case .pictureLossIndication(let pli) in packets {
                        keyAsked.insert(pli.mediaSSRC)
                        plis.append(pli.mediaSSRC)
                    }
                default: break
                }
            }
        }

        /// What bob got of a stream from now on, after `body` ran.
        mutating func received(during body: (inout Room) throws -> Void) rethrows -> [UInt32: [RTPPacket]] {
            toBob = [:]
            try body(&self)
            return toBob
        }
    }

    @Test("below the floor the videos of who spoke least recently pause (no packet, no key-frame request passed on); back at a key frame of the target layer with continuous numbers once the estimate allows it for a second")
    func videoPausedAndResumed() throws {
        var room = try Room()
        room.levels["alice"] = 20
        try room.run(.seconds(2))
        #expect(room.forwarder.layerStates(to: "bob").allSatisfy { $0.layer == 2 }, "bob starts on the top layers: \(room.forwarder.layerStates(to: "bob"))")
        let lastBefore = room.toBob[room.bob("carol", "video")]!.last!

        // Three voices (about 90 kb/s each) and one lowest layer (33 kb/s) fit; two more do not.
        room.setEstimate(330_000)
        var got = try room.received { try $0.run(.milliseconds(300)) }
        let lastSent = got[room.bob("carol", "video")]?.last ?? lastBefore
        let states = Dictionary(uniqueKeysWithValues: room.forwarder.layerStates(to: "bob").map { ($0.sender, $0) })
        #expect(states["alice"]?.paused == false && states["alice"]?.target == 0, "alice speaks: her video stays, on q")
        #expect(states["carol"]?.paused == true && states["dave"]?.paused == true, "\(states)")
        #expect(room.forwarder.counters.videoPauses == 2 && room.forwarder.squeezedStreams.pausedVideo == 2)
        #expect(room.forwarder.squeezedStreams.withheldAudio == 0, "every voice fits")
        got = try room.received { try $0.run(.seconds(1)) }
        #expect(got[room.bob("carol", "video")] == nil && got[room.bob("dave", "video")] == nil, "a paused video sends nothing")
        #expect((got[room.bob("alice", "video")]?.count ?? 0) >= 20, "alice's q reaches bob")
        for sender in Self.senders { #expect((got[room.bob(sender, "audio")]?.count ?? 0) >= 45, "\(sender)'s voice goes on") }

        // bob's decoder asks for carol's picture: the forwarder does not pass it on while paused.
        room.plis = []
        let pli = RTCPPictureLossIndication(senderSSRC: 9000, mediaSSRC: room.bob("carol", "video"))
        let answered = try room.forwarder.handleRTCP(try RTCPPacket.serializeCompound([.pictureLossIndication(pli)]), from: "bob", now: room.now)
        room.collect(answered.outputs)
        try room.run(.milliseconds(600))
        #expect(!room.plis.contains { (0..<3).map { Self.layerSSRC(1, $0) }.contains($0) }, "no key frame asked of carol: \(room.plis)")

        // The estimate comes back: after the hold the two resume, each at a key frame its layer was asked for.
        room.setEstimate(2_000_000)
        room.plis = []
        got = try room.received { try $0.run(.milliseconds(800)) }
        #expect(got[room.bob("carol", "video")] == nil, "not before the hold")
        got = try room.received { try $0.run(.seconds(1)) }
        #expect(room.forwarder.counters.videoResumes == 2 && room.forwarder.squeezedStreams.pausedVideo == 0)
        let carol = try #require(got[room.bob("carol", "video")], "carol's video is back")
        #expect(room.plis.contains { (0..<3).map { Self.layerSSRC(1, $0) }.contains($0) }, "a key frame was asked of carol's target layer")
        let first = try #require(carol.first)
        var payload = first.payload
        _ = try VP8PayloadDescriptor(reading: &payload)
        #expect(payload.getInteger(at: payload.readerIndex, as: UInt8.self).map { $0 & 0x01 == 0 } == true, "it starts at a key frame")
        // RFC 3550 §5.1: the stream to bob runs on where it stopped, no gap in the numbers.
        #expect(first.sequenceNumber == lastSent.sequenceNumber &+ 1, "sequence \(lastSent.sequenceNumber) then \(first.sequenceNumber)")
        #expect(Int32(bitPattern: first.timestamp &- lastSent.timestamp) > 0)
    }

    @Test("below what the voices need, those who spoke most recently are kept (at least one); a new speaker takes a quiet one's place at once, its numbers continuous")
    func voicesInSpeakingOrder() throws {
        var room = try Room()
        room.levels["carol"] = 30
        try room.run(.seconds(1))
        room.levels["carol"] = 127
        room.levels["alice"] = 20
        try room.run(.seconds(1))
        let daveEarlier = try #require(room.toBob[room.bob("dave", "audio")]?.last)

        // Two voices fit, not three: dave, who never spoke, is withheld; every video pauses.
        room.setEstimate(200_000)
        var got = try room.received { try $0.run(.seconds(1)) }
        let daveBefore = got[room.bob("dave", "audio")]?.last ?? daveEarlier
        #expect(room.forwarder.withheldVoices(to: "bob") == ["dave"])
        #expect(room.forwarder.squeezedStreams.pausedVideo == 3 && room.forwarder.squeezedStreams.withheldAudio == 1)
        #expect((got[room.bob("dave", "audio")]?.count ?? 0) <= 5, "dave's voice is withheld (after the next choice, every 100 ms)")
        #expect((got[room.bob("alice", "audio")]?.count ?? 0) >= 45 && (got[room.bob("carol", "audio")]?.count ?? 0) >= 45)

        // dave speaks, alice stops: after the speaking hold, dave takes carol's place (she spoke
        // longest ago) without waiting, and his numbers continue from the last one bob got.
        room.levels["dave"] = 10
        room.levels["alice"] = 127
        got = try room.received { try $0.run(.seconds(1)) }
        #expect(room.forwarder.withheldVoices(to: "bob") == ["carol"])
        let dave = try #require(got[room.bob("dave", "audio")], "dave's voice is back")
        #expect(dave.first!.sequenceNumber == daveBefore.sequenceNumber &+ 1, "\(daveBefore.sequenceNumber) then \(dave.first!.sequenceNumber)")
        #expect(zip(dave, dave.dropFirst()).allSatisfy { $1.sequenceNumber == $0.sequenceNumber &+ 1 })
        // The timestamp runs on by the time withheld (48 kHz), within one packet.
        let withheldFor = Int64(dave.first!.timestamp &- daveBefore.timestamp)
        #expect(withheldFor > 48_000 && withheldFor < 48_000 * 3, "\(withheldFor)")
        #expect(room.forwarder.counters.audioWithheld == 2 && room.forwarder.counters.audioResumed == 1)

        // Far below: one voice still goes (the minimum), the one speaking.
        room.setEstimate(50_000)
        try room.run(.milliseconds(300))
        #expect(room.forwarder.withheldVoices(to: "bob") == ["alice", "carol"])
    }

    @Test("a receiver that has sent no congestion feedback has no estimate: below the start guess nothing is paused or withheld; its first loss report starts the floor rule")
    func noFeedbackNoSqueeze() throws {
        // A start guess that pays for the voices and one lowest layer only (as in videoPausedAndResumed).
        var configuration = ForwardingConfiguration()
        configuration.receiverStartBitrate = 330_000
        configuration.receiverBitrateRange = 330_000...330_000
        var room = try Room(configuration: configuration)
        room.levels["alice"] = 20
        let got = try room.received { try $0.run(.seconds(3)) }
        #expect(room.forwarder.squeezedStreams.pausedVideo == 0 && room.forwarder.squeezedStreams.withheldAudio == 0)
        for sender in Self.senders {
            #expect((got[room.bob(sender, "audio")]?.count ?? 0) == 150, "\(sender)'s voice")
            #expect((got[room.bob(sender, "video")]?.count ?? 0) >= 50, "\(sender)'s video, on its lowest layers")
        }

        // bob reports on what he gets (no loss): the estimate is his now, and the floor rule applies.
        let block = RTCPReportBlock(ssrc: room.bob("alice", "audio"), fractionLost: 0, cumulativeLost: 0,
                                    extendedHighestSequenceNumber: 1, jitter: 0, lastSenderReport: 0, delaySinceLastSenderReport: 0)
        let report = try RTCPPacket.serializeCompound([.receiverReport(RTCPReceiverReport(ssrc: 9000, reports: [block]))])
        room.collect(try room.forwarder.handleRTCP(report, from: "bob", now: room.now).outputs)
        try room.run(.milliseconds(300))
        #expect(room.forwarder.squeezedStreams.pausedVideo == 2, "\(room.forwarder.layerStates(to: "bob"))")
    }

    @Test("a receiver with room for everything gets everything: nothing paused or withheld")
    func noSqueezeNoChange() throws {
        var room = try Room()
        let got = try room.received { try $0.run(.seconds(3)) }
        #expect(room.forwarder.squeezedStreams.pausedVideo == 0 && room.forwarder.squeezedStreams.withheldAudio == 0)
        #expect(room.forwarder.counters.videoPauses == 0 && room.forwarder.counters.audioWithheld == 0)
        for sender in Self.senders {
            #expect((got[room.bob(sender, "audio")]?.count ?? 0) == 150)
            #expect((got[room.bob(sender, "video")]?.count ?? 0) >= 50)
        }
    }
}
