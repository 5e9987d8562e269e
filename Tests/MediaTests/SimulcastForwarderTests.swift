import NIOCore
import Testing
@testable import Media
import RTP

/// The forwarder's simulcast switch without sockets (docs/rooms.md "Simulcast and layer choice"):
/// alice sends three VP8 layers (rids q, h, f) whose SSRCs the forwarder learns from the rid
/// extension; bob receives one stream of her video.
@Suite("Simulcast in the forwarder: layers learned by rid, switched only at key frames, numbers continuous, undeclared layers refused")
struct SimulcastForwarderTests {
    static let videoPT: UInt8 = 96
    static let rtxPT: UInt8 = 97
    static let aliceIDs = ForwardingExtensionIDs(mid: 1, transportWideCC: 3, rtpStreamID: 7, repairedRTPStreamID: 8)
    static let bobIDs = ForwardingExtensionIDs(mid: 4, transportWideCC: 6)
    /// alice's layer SSRCs as her packets will name them.
    static let q: UInt32 = 5001, h: UInt32 = 5002, f: UInt32 = 5003

    static func call() throws -> (forwarder: SelectiveForwarder, bobVideo: UInt32) {
        var forwarder = SelectiveForwarder()
        try forwarder.addParticipant("alice", sources: [
            ForwardedSource(kind: .audio, ssrc: 1000, payloadType: 111),
            .simulcast(rids: ["q", "h", "f"], payloadType: videoPT, retransmissionPayloadType: rtxPT),
        ], extensions: aliceIDs, now: .zero)
        try forwarder.addParticipant("bob", sources: [ForwardedSource(kind: .audio, ssrc: 2000, payloadType: 111)], extensions: bobIDs, now: .zero)
        var bobVideo: UInt32 = 0
        for stream in forwarder.outgoingStreams(to: "bob") {
            try forwarder.bind(receiver: "bob", ssrc: stream.ssrc, ForwardingBinding(
                mid: stream.kind.rawValue, payloadType: stream.kind == .video ? 100 : 109, retransmissionPayloadType: stream.kind == .video ? 101 : nil))
            if stream.kind == .video { bobVideo = stream.ssrc }
        }
        for stream in forwarder.outgoingStreams(to: "alice") {
            try forwarder.bind(receiver: "alice", ssrc: stream.ssrc, ForwardingBinding(mid: stream.kind.rawValue, payloadType: 109))
        }
        return (forwarder, bobVideo)
    }

    /// One packet of a layer: VP8 descriptor with a 15-bit picture id and TL0PICIDX (RFC 7741 §4.2),
    /// then the payload header's first octet, whose P bit is clear on a key frame (§4.3).
    static func layer(_ rid: String, ssrc: UInt32, sequence: UInt16, timestamp: UInt32, pictureID: UInt16, tl0: UInt8,
                      key: Bool = false, start: Bool = true, payloadSize: Int = 300) -> RTPPacket {
        var payload = ByteBuffer()
        payload.writeInteger(UInt8(0x80 | (start ? 0x10 : 0)))
        payload.writeInteger(UInt8(0xC0))
        payload.writeInteger(UInt16(0x8000 | pictureID))
        payload.writeInteger(tl0)
        payload.writeInteger(UInt8(key ? 0x00 : 0x01))
        payload.writeBytes(Array(repeating: UInt8(0xAB), count: payloadSize))
        return RTPPacket(marker: true, payloadType: videoPT, sequenceNumber: sequence, timestamp: timestamp, ssrc: ssrc,
                         headerExtension: .compact([RTPHeaderExtensionElement(id: 7, data: ByteBuffer(string: rid))]), payload: payload)
    }

    static func toBob(_ outputs: [ForwarderOutput]) -> [RTPPacket] {
        outputs.compactMap { if case .rtp("bob", let packet) = $0 { packet } else { nil } }
    }

    static func descriptor(_ packet: RTPPacket) throws -> VP8PayloadDescriptor {
        var payload = packet.payload
        return try VP8PayloadDescriptor(reading: &payload)
    }

    @Test("bob gets one layer at a time; the switch waits for the new layer's key frame, and sequence, timestamp, picture id and TL0PICIDX run on across it")
    func switchAtKeyFrame() throws {
        var (forwarder, bobVideo) = try Self.call()
        var now = Duration.zero
        // Bob starts on the top layer (the estimate starts high): q's delta frames do not reach him, f's key frame does.
        #expect(Self.toBob(try forwarder.forward(Self.layer("q", ssrc: Self.q, sequence: 100, timestamp: 1_000, pictureID: 10, tl0: 1), from: "alice", now: now)).isEmpty)
        #expect(Self.toBob(try forwarder.forward(Self.layer("f", ssrc: Self.f, sequence: 900, timestamp: 7_000, pictureID: 300, tl0: 40), from: "alice", now: now)).isEmpty,
                "a delta frame of f: bob cannot decode it before a key frame")
        let tick = forwarder.tick(now: now)
        #expect(tick.contains(.rtcp(to: "alice", [.pictureLossIndication(RTCPPictureLossIndication(senderSSRC: 1, mediaSSRC: Self.f))])),
                "the forwarder asks f (not q) for a key frame")
        var sent: [RTPPacket] = []
        for step in 0..<3 {
            now += .milliseconds(33)
            sent += Self.toBob(try forwarder.forward(Self.layer("f", ssrc: Self.f, sequence: 901 + UInt16(step), timestamp: 7_000 + UInt32(step) * 3_000,
                                                                 pictureID: 301 + UInt16(step), tl0: 41 + UInt8(step), key: step == 0), from: "alice", now: now))
        }
        #expect(sent.count == 3 && sent.allSatisfy { $0.ssrc == bobVideo && $0.payloadType == 100 })
        #expect(forwarder.layerStates(to: "bob").first?.layer == 2)

        // The estimate falls (here set directly): the target drops to q, but f goes on until q's key frame.
        forwarder.participants["bob"]!.outgoing[bobVideo]!.simulcast!.target = 0
        now += .milliseconds(33)
        sent += Self.toBob(try forwarder.forward(Self.layer("f", ssrc: Self.f, sequence: 904, timestamp: 16_000, pictureID: 304, tl0: 44), from: "alice", now: now))
        #expect(Self.toBob(try forwarder.forward(Self.layer("q", ssrc: Self.q, sequence: 101, timestamp: 10_000, pictureID: 11, tl0: 2), from: "alice", now: now)).isEmpty,
                "a delta frame of q cannot start bob's switch")
        now += .milliseconds(500)
        let pli = forwarder.tick(now: now)
        #expect(pli.contains(.rtcp(to: "alice", [.pictureLossIndication(RTCPPictureLossIndication(senderSSRC: 1, mediaSSRC: Self.q))])), "q is asked for its key frame")
        now += .milliseconds(33)
        let switched = Self.toBob(try forwarder.forward(Self.layer("q", ssrc: Self.q, sequence: 102, timestamp: 13_000, pictureID: 12, tl0: 3, key: true), from: "alice", now: now))
        #expect(Self.toBob(try forwarder.forward(Self.layer("f", ssrc: Self.f, sequence: 905, timestamp: 19_000, pictureID: 305, tl0: 45), from: "alice", now: now)).isEmpty,
                "after the switch f no longer reaches bob")
        now += .milliseconds(33)
        let next = Self.toBob(try forwarder.forward(Self.layer("q", ssrc: Self.q, sequence: 103, timestamp: 16_000, pictureID: 13, tl0: 4), from: "alice", now: now))
        let all = sent + switched + next
        #expect(all.count == 6)
        // RFC 7741 §4.2 and RFC 3550 §5.1: one stream to bob, numbers without a gap or a step back.
        #expect(zip(all, all.dropFirst()).allSatisfy { $1.sequenceNumber == $0.sequenceNumber &+ 1 }, "\(all.map(\.sequenceNumber))")
        #expect(zip(all, all.dropFirst()).allSatisfy { Int32(bitPattern: $1.timestamp &- $0.timestamp) > 0 }, "\(all.map(\.timestamp))")
        let pictureIDs = try all.map { try Self.descriptor($0).pictureID ?? 0 }
        let tl0s = try all.map { try Self.descriptor($0).tl0PictureIndex ?? 0 }
        #expect(zip(pictureIDs, pictureIDs.dropFirst()).allSatisfy { $1 == ($0 + 1) & 0x7FFF }, "picture ids \(pictureIDs)")
        #expect(zip(tl0s, tl0s.dropFirst()).allSatisfy { $1 == $0 &+ 1 }, "TL0PICIDX \(tl0s)")
        // 533 ms between the last f packet sent and q's key frame: 47,970 ticks of the 90 kHz clock.
        #expect(switched[0].timestamp &- sent.last!.timestamp == 47_970)
        #expect(forwarder.counters.layerSwitches == 1 && forwarder.counters.layerSwitchesDown == 1)
        #expect(forwarder.layerStates(to: "bob").first.map { ($0.layer, $0.rid, $0.switches) } ?? (nil, nil, 0) == (0, "q", 1))

        // A NACK for a number f sent is answered from f's cache, one q sent from q's: each as first sent.
        let nack = RTCPGenericNACK(senderSSRC: 9, mediaSSRC: bobVideo, lostSequenceNumbers: [sent.last!.sequenceNumber, switched[0].sequenceNumber])
        let result = try forwarder.handleRTCP(try RTCPPacket.serializeCompound([.nack(nack)]), from: "bob", now: now)
        let retransmitted = try Self.toBob(result.outputs).map { try RTXPacket.unwrap($0, originalPayloadType: 100, originalSSRC: bobVideo) }
        #expect(retransmitted.map(\.sequenceNumber) == [sent.last!.sequenceNumber, switched[0].sequenceNumber])
        #expect(retransmitted.map(\.timestamp) == [sent.last!.timestamp, switched[0].timestamp])
        #expect(try retransmitted.map { try Self.descriptor($0).pictureID } == [pictureIDs[3], pictureIDs[4]])
    }

    @Test("a layer the sender paused is not chosen: bob, on f, goes down to q when alice stops sending f (a browser pauses its upper layers while its uplink estimate is low)")
    func pausedLayerIsNotChosen() throws {
        var (forwarder, bobVideo) = try Self.call()
        var now = Duration.zero
        var toBob: [RTPPacket] = []
        var q: (sequence: UInt16, picture: UInt16) = (100, 10)
        var f: (sequence: UInt16, picture: UInt16) = (900, 300)
        // 1.5 s of both layers at 30 fps (a key frame each second): bob's estimate starts high, he gets f.
        for frame in 0..<45 {
            now += .milliseconds(33)
            let key = frame % 30 == 0
            _ = try forwarder.forward(Self.layer("q", ssrc: Self.q, sequence: q.sequence, timestamp: UInt32(frame) * 3_000, pictureID: q.picture, tl0: 0, key: key), from: "alice", now: now)
            toBob += Self.toBob(try forwarder.forward(Self.layer("f", ssrc: Self.f, sequence: f.sequence, timestamp: UInt32(frame) * 3_000, pictureID: f.picture, tl0: 0, key: key),
                                                      from: "alice", now: now))
            q = (q.sequence &+ 1, q.picture + 1)
            f = (f.sequence &+ 1, f.picture + 1)
            _ = forwarder.tick(now: now)
        }
        #expect(forwarder.layerStates(to: "bob").first?.layer == 2 && !toBob.isEmpty, "bob is on f before the pause")
        // f stops; q goes on (a key frame when the forwarder asks q for one).
        toBob = []
        var askedQ = false
        for frame in 45..<120 {
            now += .milliseconds(33)
            toBob += Self.toBob(try forwarder.forward(Self.layer("q", ssrc: Self.q, sequence: q.sequence, timestamp: UInt32(frame) * 3_000, pictureID: q.picture, tl0: 0,
                                                                 key: askedQ), from: "alice", now: now))
            askedQ = forwarder.tick(now: now).contains(.rtcp(to: "alice", [.pictureLossIndication(RTCPPictureLossIndication(senderSSRC: 1, mediaSSRC: Self.q))]))
            q = (q.sequence &+ 1, q.picture + 1)
        }
        #expect(forwarder.layerStates(to: "bob").first?.layer == 0, "bob still waits on the paused layer: \(forwarder.layerStates(to: "bob"))")
        #expect(toBob.count >= 30 && toBob.allSatisfy { $0.ssrc == bobVideo }, "bob got \(toBob.count) packets of q after f paused")
    }

    @Test("an attacker: a rid it did not declare, a second SSRC for a layer, another's SSRC, RTX before its layer, too many layers — refused")
    func attacker() throws {
        var (forwarder, _) = try Self.call()
        func refused(_ packet: RTPPacket, from id: String = "alice", _ code: MediaError.Code) {
            #expect { _ = try forwarder.forward(packet, from: id, now: .zero) } throws: { error in
                (error as? MediaError)?.code == code
            }
        }
        // A rid the forwarder did not offer.
        refused(Self.layer("x", ssrc: 5009, sequence: 1, timestamp: 0, pictureID: 0, tl0: 0, key: true), .forbidden)
        // q is learned as 5001; a second SSRC claiming q is refused.
        _ = try forwarder.forward(Self.layer("q", ssrc: Self.q, sequence: 1, timestamp: 0, pictureID: 0, tl0: 0), from: "alice", now: .zero)
        refused(Self.layer("q", ssrc: 5010, sequence: 1, timestamp: 0, pictureID: 0, tl0: 0), .forbidden)
        // A layer under bob's SSRC.
        refused(Self.layer("h", ssrc: 2000, sequence: 1, timestamp: 0, pictureID: 0, tl0: 0), .conflict)
        // RTX for h before any h media.
        let rtx = RTPPacket(payloadType: Self.rtxPT, sequenceNumber: 1, timestamp: 0, ssrc: 5020,
                            headerExtension: .compact([RTPHeaderExtensionElement(id: 8, data: ByteBuffer(string: "h"))]), payload: ByteBuffer(bytes: [0, 1, 0x90]))
        refused(rtx, .forbidden)
        // Bob declared no simulcast: a rid from him on a new SSRC is a stream he did not declare.
        refused(Self.layer("q", ssrc: 6001, sequence: 1, timestamp: 0, pictureID: 0, tl0: 0), from: "bob", .forbidden)
        #expect(forwarder.counters.rejected == 5)
        #expect(forwarder.layerStates(to: "bob").count == 1)
        // h still works with its own SSRC, and its RTX once h is known.
        _ = try forwarder.forward(Self.layer("h", ssrc: Self.h, sequence: 1, timestamp: 0, pictureID: 0, tl0: 0), from: "alice", now: .zero)
        var rtxForH = rtx
        rtxForH.ssrc = 5021
        _ = try forwarder.forward(rtxForH, from: "alice", now: .zero)
        #expect(forwarder.counters.rejected == 5)
        // Declaring four layers, or simulcast audio, is refused at join.
        var other = SelectiveForwarder()
        #expect(throws: MediaError.self) {
            try other.addParticipant("mallory", sources: [.simulcast(rids: ["a", "b", "c", "d"], payloadType: 96, retransmissionPayloadType: nil)],
                                     extensions: Self.aliceIDs, now: .zero)
        }
        // Leaving frees the learned SSRCs: they may be used again.
        _ = forwarder.removeParticipant("alice")
        try forwarder.addParticipant("carol", sources: [ForwardedSource(kind: .video, ssrc: Self.q, payloadType: 96)], extensions: Self.bobIDs, now: .zero)
    }
}
