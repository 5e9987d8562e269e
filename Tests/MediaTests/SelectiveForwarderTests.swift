import NIOCore
import Testing
@testable import Media
import RTP

/// The forwarding core without sockets (docs/rooms.md "The forwarding core"): three participants,
/// each sending audio and video, and receivers that NACK, ask for key frames, or attack.
@Suite("Selective forwarder: SSRC rewrite, NACK from cache, PLI/FIR to the source, attackers refused")
struct SelectiveForwarderTests {
    static let videoPT: UInt8 = 96
    static let audioPT: UInt8 = 111
    static let rtxPT: UInt8 = 97
    /// Receivers negotiate their own ids and payload types; the forwarder must translate.
    static let senderIDs = ForwardingExtensionIDs(mid: 1, audioLevel: 2, transportWideCC: 3)
    static let receiverIDs = ForwardingExtensionIDs(mid: 4, audioLevel: 5, transportWideCC: 6)

    static func sources(_ base: UInt32) -> [ForwardedSource] {
        [ForwardedSource(kind: .audio, ssrc: base, payloadType: audioPT),
         ForwardedSource(kind: .video, ssrc: base + 1, payloadType: videoPT, retransmission: .init(payloadType: rtxPT, ssrc: base + 2))]
    }

    /// alice (SSRCs 1000…), bob (2000…), carol (3000…); every outgoing stream bound with the
    /// receivers' payload types 100 (video) and 109 (audio).
    static func call(_ configuration: ForwardingConfiguration = ForwardingConfiguration()) throws -> SelectiveForwarder {
        var forwarder = SelectiveForwarder(configuration: configuration)
        try forwarder.addParticipant("alice", sources: sources(1000), extensions: senderIDs, now: .zero)
        try forwarder.addParticipant("bob", sources: sources(2000), extensions: receiverIDs, now: .zero)
        try forwarder.addParticipant("carol", sources: sources(3000), extensions: receiverIDs, now: .zero)
        for receiver in ["alice", "bob", "carol"] {
            for stream in forwarder.outgoingStreams(to: receiver) {
                try forwarder.bind(receiver: receiver, ssrc: stream.ssrc,
                                   ForwardingBinding(mid: "\(stream.from)-\(stream.kind.rawValue)", payloadType: stream.kind == .video ? 100 : 109))
            }
        }
        _ = forwarder.tick(now: .zero)
        return forwarder
    }

    static func video(_ sequence: UInt16, ssrc: UInt32 = 1001, timestamp: UInt32 = 90_000) -> RTPPacket {
        RTPPacket(marker: sequence % 3 == 0, payloadType: videoPT, sequenceNumber: sequence, timestamp: timestamp, ssrc: ssrc,
                  headerExtension: .compact([.mid(id: 1, "1"), .transportSequenceNumber(id: 3, sequence)]),
                  payload: ByteBuffer(bytes: [0x10, 0, 0, UInt8(sequence & 0xFF)] + Array(repeating: 0xAB, count: 900)))
    }

    static func audio(_ sequence: UInt16, level: UInt8, ssrc: UInt32 = 1000, levelID: UInt8 = senderIDs.audioLevel!) -> RTPPacket {
        RTPPacket(payloadType: audioPT, sequenceNumber: sequence, timestamp: UInt32(sequence) * 960, ssrc: ssrc,
                  headerExtension: .compact([RTPHeaderExtensionElement(id: levelID, bytes: [0x80 | level])]),
                  payload: ByteBuffer(bytes: Array(repeating: 0x55, count: 60)))
    }

    static func rtp(_ outputs: [ForwarderOutput], to receiver: String) -> [RTPPacket] {
        outputs.compactMap { if case .rtp(receiver, let packet) = $0 { packet } else { nil } }
    }

    static func rtcp(_ outputs: [ForwarderOutput], to receiver: String) -> [RTCPPacket] {
        outputs.flatMap { output -> [RTCPPacket] in
            if case .rtcp(receiver, let packets) = output { return packets }
            return []
        }
    }

    static func compound(_ packets: [RTCPPacket]) throws -> ByteBuffer { try RTCPPacket.serializeCompound(packets) }

    func outgoing(_ forwarder: SelectiveForwarder, to receiver: String, from sender: String, _ kind: ForwardedSource.Kind) throws -> ForwardedStreamDescription {
        try #require(forwarder.outgoingStreams(to: receiver).first { $0.from == sender && $0.kind == kind })
    }

    @Test("each receiver gets its own SSRC, sequence and timestamp space, its payload type and extension ids; the sender gets nothing back")
    func rewrite() throws {
        var forwarder = try Self.call()
        let toBob = try outgoing(forwarder, to: "bob", from: "alice", .video)
        let toCarol = try outgoing(forwarder, to: "carol", from: "alice", .video)
        #expect(toBob.ssrc != toCarol.ssrc && ![1000, 1001, 1002, 2000, 2001, 2002, 3000, 3001, 3002].contains(toBob.ssrc))

        var bobPackets: [RTPPacket] = []
        for sequence: UInt16 in [65_534, 65_535, 0, 1] {
            let outputs = try forwarder.forward(Self.video(sequence), from: "alice", now: .milliseconds(Int64(sequence)))
            #expect(Self.rtp(outputs, to: "alice").isEmpty)
            #expect(Self.rtp(outputs, to: "carol").count == 1)
            bobPackets += Self.rtp(outputs, to: "bob")
        }
        #expect(bobPackets.count == 4)
        #expect(bobPackets.allSatisfy { $0.ssrc == toBob.ssrc && $0.payloadType == 100 })
        // Consecutive in, consecutive out, across the source's wrap: a gap stays a gap for the receiver's NACK.
        #expect(zip(bobPackets, bobPackets.dropFirst()).allSatisfy { $1.sequenceNumber == $0.sequenceNumber &+ 1 })
        #expect(bobPackets.map(\.payload) == [65_534, 65_535, 0, 1].map { Self.video($0).payload }, "payload untouched")
        let first = try #require(bobPackets.first)
        #expect(first.headerExtension?.element(id: 4).flatMap { RTPHeaderExtensionElement(id: 4, data: $0).midValue } == "alice-video")
        #expect(first.headerExtension?.element(id: 1) == nil, "the sender's ids are not the receiver's")
        let transportSequences = bobPackets.compactMap { $0.headerExtension?.element(id: 6).flatMap { RTPHeaderExtensionElement(id: 6, data: $0).transportSequenceNumberValue } }
        // Numbered by bob's bandwidth estimator (its transport-cc adapter counts from 1).
        #expect(transportSequences == [1, 2, 3, 4], "bob's own transport-wide sequence")
        #expect(forwarder.counters.packetsIn == 4 && forwarder.counters.packetsOut == 8)
        #expect(forwarder.counters.bytesOut == 8 * (12 + 4 + 16 + 904), "header, extension block (mid \"alice-video\" + transport-cc, padded to 16), payload")
    }

    @Test("nothing flows on a stream before the receiver's SDP has it")
    func unboundStreamsCarryNothing() throws {
        var forwarder = SelectiveForwarder()
        try forwarder.addParticipant("alice", sources: Self.sources(1000), extensions: Self.senderIDs, now: .zero)
        try forwarder.addParticipant("bob", sources: Self.sources(2000), extensions: Self.receiverIDs, now: .zero)
        #expect(try forwarder.forward(Self.video(5), from: "alice", now: .zero).isEmpty)
        let stream = try outgoing(forwarder, to: "bob", from: "alice", .video)
        try forwarder.bind(receiver: "bob", ssrc: stream.ssrc, ForwardingBinding(mid: "2", payloadType: 100))
        #expect(Self.rtp(try forwarder.forward(Self.video(6), from: "alice", now: .zero), to: "bob").count == 1)
        #expect(Self.rtcp(forwarder.tick(now: .zero), to: "alice") == [.pictureLossIndication(.init(senderSSRC: 1, mediaSSRC: 1001))],
                "bob cannot decode alice before a key frame: the forwarder asks her for one")
    }

    @Test("a NACK is answered from the cache with the packet bob missed; what the cache lost is asked of alice by her own numbers (RFC 4585 §6.2.1)")
    func nackFromCache() throws {
        var forwarder = try Self.call(ForwardingConfiguration(videoCacheCapacity: 8))
        let toBob = try outgoing(forwarder, to: "bob", from: "alice", .video)
        var sent: [UInt16: RTPPacket] = [:]
        for sequence: UInt16 in 100..<120 {
            for packet in Self.rtp(try forwarder.forward(Self.video(sequence), from: "alice", now: .milliseconds(10)), to: "bob") {
                sent[sequence] = packet
            }
        }
        let lostRecent = try #require(sent[118]).sequenceNumber
        let lostOld = try #require(sent[105]).sequenceNumber
        let nack = RTCPGenericNACK(senderSSRC: 2001, mediaSSRC: toBob.ssrc, lostSequenceNumbers: [lostRecent, lostOld])
        let result = try forwarder.handleRTCP(try Self.compound([.nack(nack)]), from: "bob", now: .milliseconds(50))
        #expect(result.refusals.isEmpty)
        let resent = Self.rtp(result.outputs, to: "bob")
        #expect(resent.count == 1)
        #expect(resent.first?.sequenceNumber == lostRecent && resent.first?.ssrc == toBob.ssrc && resent.first?.payload == sent[118]?.payload)
        #expect(Self.rtcp(result.outputs, to: "alice") == [.nack(RTCPGenericNACK(senderSSRC: 1, mediaSSRC: 1001, lostSequenceNumbers: [105]))],
                "packet 105 fell out of the 8-packet cache: alice is asked for her sequence number 105")
        #expect(forwarder.counters.nacksAnsweredFromCache == 1 && forwarder.counters.nacksForwardedToSource == 1)

        // Past the cache's age a retransmission would come too late to play: asked of the source instead.
        let late = try forwarder.handleRTCP(try Self.compound([.nack(RTCPGenericNACK(senderSSRC: 2001, mediaSSRC: toBob.ssrc, lostSequenceNumbers: [lostRecent]))]),
                                            from: "bob", now: .seconds(2))
        #expect(Self.rtp(late.outputs, to: "bob").isEmpty)
        #expect(Self.rtcp(late.outputs, to: "alice").count == 1)
    }

    @Test("the ticks free cached packets past the cache's age (each holds its datagram); a young one stays and still answers a NACK")
    func cacheFreesOldPackets() throws {
        var forwarder = try Self.call()
        for sequence: UInt16 in 0..<100 {
            _ = try forwarder.forward(Self.video(sequence), from: "alice", now: .milliseconds(Int64(sequence)))
        }
        func held() -> Int { forwarder.participants["alice"]!.sources[1001]!.cache.heldPackets }
        #expect(held() == 100)
        // Ticks while they are younger than the age (1 s) free nothing.
        var time = Duration.milliseconds(100)
        for _ in 0..<40 { time += .milliseconds(20); _ = forwarder.tick(now: time) }
        #expect(held() == 100)
        // One new packet once the old ones are past the age, then 0.6 s of ticks (the sweep goes
        // round the 512 slots): the ring still has room for 412 more, but the 100 old ones are gone.
        let toBob = try outgoing(forwarder, to: "bob", from: "alice", .video)
        time = .milliseconds(1200)
        let young = try #require(Self.rtp(try forwarder.forward(Self.video(100), from: "alice", now: time), to: "bob").first)
        for _ in 0..<30 { time += .milliseconds(20); _ = forwarder.tick(now: time) }
        #expect(held() == 1)
        let nack = RTCPGenericNACK(senderSSRC: 2001, mediaSSRC: toBob.ssrc, lostSequenceNumbers: [young.sequenceNumber])
        let result = try forwarder.handleRTCP(try Self.compound([.nack(nack)]), from: "bob", now: time)
        #expect(Self.rtp(result.outputs, to: "bob").map(\.payload) == [young.payload])
    }

    @Test("with RTX negotiated, bob's NACK is answered in his RTX stream (RFC 4588 §4) and unwraps to the packet he missed")
    func retransmissionInRTX() throws {
        var forwarder = try Self.call()
        let toBob = try outgoing(forwarder, to: "bob", from: "alice", .video)
        let rtxSSRC = try #require(toBob.retransmissionSSRC)
        try forwarder.bind(receiver: "bob", ssrc: toBob.ssrc, ForwardingBinding(mid: "a", payloadType: 100, retransmissionPayloadType: 101))
        let sent = try #require(Self.rtp(try forwarder.forward(Self.video(40), from: "alice", now: .zero), to: "bob").first)
        let result = try forwarder.handleRTCP(try Self.compound([.nack(.init(senderSSRC: 2001, mediaSSRC: toBob.ssrc, lostSequenceNumbers: [sent.sequenceNumber]))]),
                                              from: "bob", now: .milliseconds(40))
        let rtx = try #require(Self.rtp(result.outputs, to: "bob").first)
        #expect(rtx.ssrc == rtxSSRC && rtx.payloadType == 101)
        let original = try RTXPacket.unwrap(rtx, originalPayloadType: 100, originalSSRC: toBob.ssrc)
        #expect(original.sequenceNumber == sent.sequenceNumber && original.payload == sent.payload)
        let leave = forwarder.removeParticipant("alice")
        #expect(Self.rtcp(leave, to: "bob").contains { if case .goodbye(let bye) = $0 { bye.ssrcs.contains(rtxSSRC) } else { false } })
    }

    @Test("alice's RTX answer (RFC 4588) reaches bob as the original packet in his numbering")
    func retransmissionUnwrapped() throws {
        var forwarder = try Self.call()
        let original = Self.video(7)
        let direct = Self.rtp(try forwarder.forward(original, from: "alice", now: .zero), to: "bob")
        let rtx = RTXPacket.wrap(original, payloadType: Self.rtxPT, ssrc: 1002, sequenceNumber: 1)
        let repaired = Self.rtp(try forwarder.forward(rtx, from: "alice", now: .milliseconds(30)), to: "bob")
        #expect(repaired.map(\.sequenceNumber) == direct.map(\.sequenceNumber) && repaired.map(\.payload) == direct.map(\.payload))
    }

    @Test("PLIs of many receivers cost alice one key frame per interval; a FIR becomes a FIR with alice's SSRC and a growing sequence number (RFC 5104 §4.3.1)")
    func keyFrameRequests() throws {
        var forwarder = try Self.call()
        let plisAtStart = forwarder.counters.plisForwarded
        #expect(plisAtStart == 3, "binding asked each video source for a key frame once")
        let bobView = try outgoing(forwarder, to: "bob", from: "alice", .video)
        let carolView = try outgoing(forwarder, to: "carol", from: "alice", .video)
        let first = try forwarder.handleRTCP(try Self.compound([.pictureLossIndication(.init(senderSSRC: 2001, mediaSSRC: bobView.ssrc))]), from: "bob", now: .seconds(1))
        #expect(Self.rtcp(first.outputs, to: "alice") == [.pictureLossIndication(.init(senderSSRC: 1, mediaSSRC: 1001))])
        let second = try forwarder.handleRTCP(try Self.compound([.pictureLossIndication(.init(senderSSRC: 3001, mediaSSRC: carolView.ssrc))]), from: "carol", now: .seconds(1) + .milliseconds(100))
        #expect(second.outputs.isEmpty, "coalesced with bob's")
        // …but not forgotten: the key frame bob's request brought may have passed before carol lost her picture.
        #expect(forwarder.tick(now: .seconds(1) + .milliseconds(400)).isEmpty)
        #expect(Self.rtcp(forwarder.tick(now: .seconds(1) + .milliseconds(500)), to: "alice") == [.pictureLossIndication(.init(senderSSRC: 1, mediaSSRC: 1001))])
        #expect(forwarder.tick(now: .seconds(1) + .milliseconds(600)).isEmpty)
        let fir = try forwarder.handleRTCP(try Self.compound([.fullIntraRequest(.init(senderSSRC: 3001, entries: [.init(ssrc: carolView.ssrc, sequenceNumber: 9)]))]),
                                           from: "carol", now: .seconds(2))
        #expect(Self.rtcp(fir.outputs, to: "alice") == [.fullIntraRequest(.init(senderSSRC: 1, entries: [.init(ssrc: 1001, sequenceNumber: 1)]))])
        #expect(forwarder.counters.keyFrameRequestsReceived == 3 && forwarder.counters.plisForwarded - plisAtStart == 2 && forwarder.counters.firsForwarded == 1)
    }

    @Test("receiver reports end at the forwarder; a sender report is translated per receiver with the packets' timestamp shift (RFC 3550 §7.3)")
    func reports() throws {
        var forwarder = try Self.call()
        let packet = try #require(Self.rtp(try forwarder.forward(Self.video(1, timestamp: 90_000), from: "alice", now: .zero), to: "bob").first)
        let report = RTCPSenderReport(ssrc: 1001, ntpTimestamp: 0xAAAA_0000_0000, rtpTimestamp: 93_000, packetCount: 50, octetCount: 40_000,
                                      reports: [RTCPReportBlock(ssrc: 12345, fractionLost: 0, cumulativeLost: 0, extendedHighestSequenceNumber: 1, jitter: 0, lastSenderReport: 0, delaySinceLastSenderReport: 0)])
        let result = try forwarder.handleRTCP(try Self.compound([.senderReport(report), .receiverReport(.init(ssrc: 1001))]), from: "alice", now: .zero)
        guard case .senderReport(let translated)? = Self.rtcp(result.outputs, to: "bob").first else {
            Issue.record("bob got no sender report: \(result.outputs)")
            return
        }
        #expect(translated.ssrc == packet.ssrc && translated.ntpTimestamp == report.ntpTimestamp)
        #expect(translated.rtpTimestamp &- packet.timestamp == 3_000, "same shift as the packets: lip sync survives")
        #expect(translated.packetCount == 1 && translated.reports.isEmpty)
        #expect(Self.rtcp(result.outputs, to: "alice").isEmpty)
        #expect(forwarder.counters.reportsTerminated == 2)
    }

    @Test("an attacker among the participants: foreign SSRCs, feedback for streams not its own, a lying RTCP length, a NACK flood")
    func attacker() throws {
        var forwarder = try Self.call()
        // Mallory (bob) sends video under alice's SSRC, to replace her picture at carol's.
        #expect(throws: MediaError(.forbidden, "bob sent RTP with SSRC 1001: it belongs to alice")) {
            try forwarder.forward(Self.video(1, ssrc: 1001), from: "bob", now: .zero)
        }
        // …under an SSRC nobody declared, or his own SSRC with a payload type he did not declare.
        #expect(throws: MediaError.self) { try forwarder.forward(Self.video(1, ssrc: 77), from: "bob", now: .zero) }
        var wrongType = Self.video(1, ssrc: 2001)
        wrongType.payloadType = 120
        #expect(throws: MediaError.self) { try forwarder.forward(wrongType, from: "bob", now: .zero) }
        #expect(forwarder.counters.rejected == 3 && forwarder.counters.packetsIn == 0)

        // A NACK and a PLI for alice's source SSRC directly, and a PLI for an audio stream.
        let carolAudioAtBob = try outgoing(forwarder, to: "bob", from: "carol", .audio)
        let feedback = try forwarder.handleRTCP(try Self.compound([
            .nack(.init(senderSSRC: 2001, mediaSSRC: 1001, lostSequenceNumbers: [1])),
            .pictureLossIndication(.init(senderSSRC: 2001, mediaSSRC: 1001)),
            .pictureLossIndication(.init(senderSSRC: 2001, mediaSSRC: carolAudioAtBob.ssrc)),
        ]), from: "bob", now: .zero)
        #expect(feedback.outputs.isEmpty && feedback.refusals.count == 3 && feedback.refusals.allSatisfy { $0.code == .forbidden })

        // A compound packet whose second length runs past the datagram: nothing in it is acted on.
        var lying = try Self.compound([.pictureLossIndication(.init(senderSSRC: 2001, mediaSSRC: try outgoing(forwarder, to: "bob", from: "alice", .video).ssrc))])
        lying.writeBytes([0x81, 205, 0x00, 0x40, 0, 0, 0, 1])
        let plis = forwarder.counters.plisForwarded
        #expect(throws: MediaError.self) { try forwarder.handleRTCP(lying, from: "bob", now: .seconds(3)) }
        #expect(forwarder.counters.plisForwarded == plis)

        // A NACK flood: the same 64 packets asked 50 times in one second get at most 400 retransmissions.
        let view = try outgoing(forwarder, to: "bob", from: "alice", .video)
        var numbers: [UInt16] = []
        for sequence: UInt16 in 0..<64 {
            numbers += Self.rtp(try forwarder.forward(Self.video(sequence), from: "alice", now: .seconds(5)), to: "bob").map(\.sequenceNumber)
        }
        var resent = 0
        let flood = try Self.compound([.nack(.init(senderSSRC: 2001, mediaSSRC: view.ssrc, lostSequenceNumbers: numbers + numbers))])
        for round in 0..<50 {
            resent += Self.rtp(try forwarder.handleRTCP(flood, from: "bob", now: .seconds(5) + .milliseconds(Int64(round))).outputs, to: "bob").count
        }
        #expect(resent <= 400 + 64, "one second of budget (plus the refill during the flood)")
        #expect(resent >= 400)
        #expect(forwarder.counters.retransmissionsThrottled > 0)
    }

    @Test("who speaks: the RFC 6464 level of each participant, loudest first, until the hold time passes")
    func speakers() throws {
        var forwarder = try Self.call()
        let toBob = Self.rtp(try forwarder.forward(Self.audio(1, level: 30), from: "alice", now: .zero), to: "bob")
        _ = try forwarder.forward(Self.audio(1, level: 110, ssrc: 3000, levelID: 5), from: "carol", now: .zero)
        _ = try forwarder.forward(Self.audio(1, level: 45, ssrc: 2000, levelID: 5), from: "bob", now: .zero)
        // An element under an id bob did not negotiate for the level is not read as one.
        _ = try forwarder.forward(Self.audio(2, level: 10, ssrc: 3000, levelID: 2), from: "carol", now: .zero)
        #expect(forwarder.speakers(now: .milliseconds(100)).map(\.participant) == ["alice", "bob"])
        #expect(toBob.first?.headerExtension?.element(id: 5).flatMap { AudioLevel(extensionData: $0) } == AudioLevel(level: 30, voiceActivity: true),
                "the level reaches bob under his id, for the page's speaker highlight")
        #expect(forwarder.speakers(now: .seconds(1)).isEmpty)
    }

    @Test("a participant who leaves: its streams end with a BYE at the others; bounds and SSRC conflicts are refused")
    func leaveAndBounds() throws {
        var forwarder = try Self.call(ForwardingConfiguration(maxParticipants: 3))
        let atBob = forwarder.outgoingStreams(to: "bob").filter { $0.from == "alice" }.map(\.ssrc).sorted()
        let outputs = forwarder.removeParticipant("alice")
        #expect(Self.rtcp(outputs, to: "bob") == [.goodbye(RTCPGoodbye(ssrcs: atBob, reason: "participant left"))])
        #expect(forwarder.outgoingStreams(to: "bob").allSatisfy { $0.from == "carol" })
        #expect(throws: MediaError.self) { try forwarder.forward(Self.video(1), from: "alice", now: .zero) }

        #expect(throws: MediaError(.conflict, "participant dave declares SSRC 2001, which another stream of the call already uses (RFC 3550 §8: SSRCs are unique in a session)")) {
            try forwarder.addParticipant("dave", sources: [ForwardedSource(kind: .video, ssrc: 2001, payloadType: 96)], extensions: Self.receiverIDs, now: .zero)
        }
        try forwarder.addParticipant("alice", sources: Self.sources(1000), extensions: Self.senderIDs, now: .zero)
        #expect(throws: MediaError.self) {
            try forwarder.addParticipant("erin", sources: Self.sources(5000), extensions: Self.receiverIDs, now: .zero)
        }
        var small = SelectiveForwarder()
        #expect(throws: MediaError.self) {
            try small.addParticipant("x", sources: (0..<6).map { ForwardedSource(kind: .audio, ssrc: 10 + $0, payloadType: 111) }, extensions: .init(), now: .zero)
        }
    }
}
