import Testing
@testable import Media

/// Issue 16's test "a receiver whose link is squeezed gets a lower simulcast layer while the others
/// keep the top one", in simulated time: five participants send three VP8 layers each through the
/// forwarding core; one receiver's downlink is rate-limited for a while.
@Suite("Simulcast through the forwarder: layers per receiver from its transport-cc estimate")
struct SimulcastLoopTests {
    @Test("a squeezed receiver gets lower layers and still decodes every sender; the others keep the top; it goes back up after")
    func squeezedReceiver() throws {
        var configuration = ForwardedCallLoop.Configuration(
            participants: 5, width: 512, height: 288, framesPerSecond: 10, videoBitrateKbps: 700, duration: .milliseconds(9500), lossProbability: 0)
        configuration.simulcast = true
        // p2's downlink: 900 kb/s from 3 s to 6.5 s, below the 4 × 400 kb/s of the others' top layers.
        configuration.squeeze = .init(participant: 1, capacityBitsPerSecond: 900_000, from: .seconds(3), until: .milliseconds(6500))
        let report = try ForwardedCallLoop(configuration: configuration).run()
        for state in report.layersDuringSqueeze + report.layersAtEnd {
            print("simulcast-loop: \(state.receiver) <- \(state.sender): layer \(state.layer.map(String.init) ?? "-") target \(state.target) estimate \(Int(state.estimate / 1000)) kb/s switches \(state.switches)")
        }
        print("simulcast-loop: switches \(report.forwarder.layerSwitches) (down \(report.forwarder.layerSwitchesDown)), squeezed frames \(report.framesDecodedInSqueeze), dropped \(report.droppedBySqueeze), plis \(report.forwarder.plisForwarded), refusals \(report.refusals.prefix(3))")
        #expect(report.refusals.isEmpty, "honest participants: \(report.refusals.prefix(3))")
        let squeezed = report.layersDuringSqueeze.filter { $0.receiver == "p2" }
        let others = report.layersDuringSqueeze.filter { $0.receiver != "p2" }
        #expect(squeezed.count == 4 && others.count == 16)
        // During the squeeze: p2 gets no top layer, everyone else gets the top of everyone.
        #expect(squeezed.allSatisfy { ($0.layer ?? 2) < 2 }, "p2 during the squeeze: \(squeezed.map(\.layer))")
        #expect(others.allSatisfy { $0.layer == 2 }, "the others keep the top layer: \(others.map { "\($0.receiver)<-\($0.sender) \($0.layer ?? -1)" })")
        // p2 still decodes every sender (10 fps: 20 pictures in the last 2 s of the squeeze).
        #expect(report.framesDecodedInSqueeze.count == 4)
        for (sender, frames) in report.framesDecodedInSqueeze { #expect(frames >= 12, "p2 decoded \(frames) frames of \(sender) in the last 2 s of the squeeze") }
        for reception in report.receptions {
            // A switch shows one picture twice at most (the old layer's copy went out before the new
            // layer's key frame of the same picture arrived); numbers never go back.
            let numbers = reception.video.patternFrameNumbers
            #expect(zip(numbers, numbers.dropFirst()).allSatisfy { $0 <= $1 }, "\(reception.receiver) <- \(reception.sender): frame numbers advance across layer switches")
            #expect(reception.receiver == "p2" || reception.video.patternInOrder, "\(reception.receiver) <- \(reception.sender): no switch, no repeat")
            #expect(reception.video.patternFrameNumbers.count >= 60, "\(reception.receiver) decoded \(reception.video.patternFrameNumbers.count) frames of \(reception.sender)")
        }
        // After the squeeze the estimate grows again and p2's layers go back up (one step at a time).
        let after = report.layersAtEnd.filter { $0.receiver == "p2" }
        #expect(after.map(\.target).reduce(0, +) > squeezed.map(\.target).reduce(0, +), "p2's layers go back up: \(squeezed.map(\.target)) → \(after.map(\.target))")
        #expect((after.first?.estimate ?? 0) > (squeezed.first?.estimate ?? 0))
        #expect(report.layersAtEnd.filter { $0.receiver != "p2" }.allSatisfy { $0.layer == 2 })
        #expect(report.forwarder.layerSwitchesDown >= 4 && report.forwarder.layerSwitches >= report.forwarder.layerSwitchesDown)
    }
}
