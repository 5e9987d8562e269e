import Testing
@testable import Media

/// Five participants through the forwarding core with real VP8/Opus sessions (docs/rooms.md
/// "The forwarding core"): the test the CLI's five-process test will repeat over sockets.
@Suite("Forwarded call loop: five participants, each decodes every other through the forwarder")
struct ForwardedCallLoopTests {
    @Test("each of five participants decodes every other's test pattern and tone; losses are repaired from the forwarder's cache")
    func fiveParticipants() throws {
        let loop = ForwardedCallLoop(configuration: .init(participants: 5, duration: .seconds(2), lossProbability: 0.02))
        let report = try loop.run()
        #expect(report.refusals.isEmpty, "honest participants: \(report.refusals.prefix(3))")
        #expect(report.receptions.count == 20)
        // Every participant sends its tone's RFC 6464 level, so the forwarder hears all five speak.
        #expect(report.speakers.sorted() == ["p1", "p2", "p3", "p4", "p5"], "speakers: \(report.speakers)")
        for reception in report.receptions {
            let frames = reception.video.patternFrameNumbers
            // The last to join is seen for 2 s at 15 fps: 30 frames; the forwarder asks for a key frame as each receiver binds, so few are missed.
            #expect(frames.count >= 26, "\(reception.receiver) decoded \(frames.count) frames of \(reception.sender)")
            #expect(reception.video.patternInOrder, "\(reception.receiver) ← \(reception.sender): frame numbers advance")
            #expect(reception.audio.packets >= 80, "\(reception.receiver) got \(reception.audio.packets) tone packets of \(reception.sender)")
        }
        let counters = report.forwarder
        #expect(counters.packetsOut >= counters.packetsIn * 3, "each packet goes to the 3 or 4 others")
        #expect(counters.nacksAnsweredFromCache > 0, "2 % loss on downlinks is repaired from the cache")
        #expect(counters.plisForwarded > 0, "a newcomer's decoders ask for key frames through the forwarder")
        let recovered = report.receptions.reduce(0) { $0 + $1.video.recoveredByNACK }
        #expect(recovered >= counters.nacksAnsweredFromCache, "the cache's answers (in each receiver's RTX stream) and the sources' repaired the gaps: \(recovered)")
        print("forwarded-loop: in \(counters.packetsIn) out \(counters.packetsOut) nacked \(counters.nackedPackets) fromCache \(counters.nacksAnsweredFromCache) toSource \(counters.nacksForwardedToSource) pli \(counters.plisForwarded) lost \(report.packetsLostOnLinks) keyframes \(report.keyFramesSent)")
        for reception in report.receptions where reception.video.patternFrameNumbers.count < 30 {
            print("forwarded-loop: \(reception.receiver) <- \(reception.sender): \(reception.video.patternFrameNumbers.count) frames, first \(reception.video.patternFrameNumbers.first ?? -1) last \(reception.video.patternFrameNumbers.last ?? -1), lost \(reception.video.lost) pli \(reception.video.pictureLossIndications)")
        }
        print("forwarded-loop: min frames \(report.receptions.map(\.video.patternFrameNumbers.count).min() ?? 0) max \(report.receptions.map(\.video.patternFrameNumbers.count).max() ?? 0)")
    }
}
