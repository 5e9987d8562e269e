import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Several devices when the caller is at another node (docs/protocol.md "Devices", "Node
/// links"): a call relayed over a link rings on every device, the first device's accept goes
/// back over the link with the owner's endorsement, the others hear answered-elsewhere, and
/// the caller's next messages reach the device that took the call only.
@Suite struct HubDeviceLinkTests {
    static let here = "192.0.2.1:8080"
    static let nodeA = "192.0.2.10:8080"

    @Test("a remote caller's call rings on both devices; the phone's accept goes over the link with the endorsement; the offer reaches the phone only")
    func remoteCallerReachesTheDeviceThatAnswered() async throws {
        let network = NodeRegistry()
        let fixture = try await HubFixture(node: Self.here, identity: .generate())
        await fixture.hub.setProver(network.prover)
        defer { Task { await fixture.close() } }
        let a = Identity.generate()
        network.run(a, at: Self.nodeA)
        let (ann, annKey) = try await fixture.loggedIn("ann")[0]
        let (phone, phoneKey, _) = try await HubDeviceTests.link("ann", owner: ann, ownerKey: annKey, on: fixture)
        let link = await fixture.peer()
        #expect(try await link.linked(as: Self.nodeA, a, to: Self.here).proven == true)

        let alice = Identity.generate(), now = Date().timeIntervalSince1970
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "ann", call: "far", kind: .audio, ts: now), with: alice)
        await link.send(.callSetup(.call, call), to: "ann", from: "alice@\(Self.nodeA)", id: "ring")
        for device in [ann, phone] {
            #expect(try await device.next { if case .callSetup(.call, let body) = $0.payload { body } else { nil } } == call)
        }
        let accept = CallSigning.sign(CallPayload(type: .accept, from: "ann", to: "alice@\(Self.nodeA)", call: "far", ts: now), with: phoneKey)
        await phone.send(.callSetup(.accept, accept), to: "alice@\(Self.nodeA)", id: "take")
        #expect(try await phone.ack().of == "take")
        let relayed = try await link.next { if case .callSetup(.accept, let body) = $0.payload { body } else { nil } }
        #expect(relayed.owner == annKey.publicKeyBase64
                && DeviceRules.verify(endorsement: relayed.endorsement ?? "", name: "ann", key: phoneKey.publicKeyBase64, owner: annKey.publicKeyBase64))
        #expect(try await ann.next { if case .device(.answeredElsewhere(let body)) = $0.payload { body.call } else { nil } } == "far")
        let offer = CallSigning.sign(CallPayload(type: .sdp, from: "alice", to: "ann", call: "far", sdpType: "offer", sdp: "v=0", ts: now), with: alice)
        await link.send(.callSetup(.sdp, offer), to: "ann", from: "alice@\(Self.nodeA)", id: "offer")
        #expect(try await phone.next { if case .callSetup(.sdp, let body) = $0.payload { body } else { nil } } == offer)
        await link.send(.chat(ChatBody(text: "marker")), to: "ann", from: "alice@\(Self.nodeA)", id: "marker")
        try await ann.expectNext(id: "marker", "the chat, not the offer that went to the phone")
    }
}
