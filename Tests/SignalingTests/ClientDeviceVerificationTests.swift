import Foundation
import Testing
@testable import Signaling

/// What a `SignalingClient` accepts from a peer's linked device (docs/protocol.md "Devices"):
/// the owner key is pinned and the owner's endorsement of the signing key must verify; a node
/// that attaches a made-up endorsement, or one for another name, is caught.
@Suite struct ClientDeviceVerificationTests {
    let bob = SignalingClient(url: "ws://127.0.0.1:1/ws", name: "bob", identity: .generate())
    static var now: Double { Date().timeIntervalSince1970 }

    func body(_ type: CallSetupType, signedBy device: Identity, call: String, owner: Identity, endorsedAs name: String = "alice",
              endorser: Identity? = nil) -> SignedBody {
        var body = CallSigning.sign(CallPayload(type: type, from: "alice", to: "bob", call: call, kind: type == .call ? .audio : nil, ts: Self.now), with: device)
        body.owner = owner.publicKeyBase64
        body.endorsement = (endorser ?? owner).sign(text: DeviceRules.endorsementText(name: name, key: device.publicKeyBase64))
        return body
    }

    @Test("a linked device's call pins the owner key and binds the call to the device key; the owner's own key is then taken too")
    func endorsedDeviceIsTaken() async throws {
        let owner = Identity.generate(), phone = Identity.generate()
        let payload = try await bob.verifyCallSetup(.call, body(.call, signedBy: phone, call: "c1", owner: owner), from: "alice", to: "bob", id: "1")
        #expect(payload.key == phone.publicKeyBase64)
        #expect(bob.pins.key(for: "alice@127.0.0.1:1") == owner.publicKeyBase64)
        let direct = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "c2", kind: .audio, ts: Self.now), with: owner)
        #expect(try await bob.verifyCallSetup(.call, direct, from: "alice", to: "bob", id: "2").key == owner.publicKeyBase64)
    }

    @Test("an endorsement by another key, for another name, or a device of another owner than the pinned one is refused")
    func forgedEndorsementIsRefused() async throws {
        let owner = Identity.generate(), phone = Identity.generate(), mallory = Identity.generate()
        _ = try await bob.verifyCallSetup(.call, body(.call, signedBy: phone, call: "c1", owner: owner), from: "alice", to: "bob", id: "1")
        for (id, forged, code) in [("2", body(.call, signedBy: mallory, call: "c2", owner: owner, endorser: mallory), SignalingError.Code.badSignature),
                                   ("3", body(.call, signedBy: mallory, call: "c3", owner: owner, endorsedAs: "carol"), .badSignature),
                                   ("4", body(.call, signedBy: mallory, call: "c4", owner: mallory), .keyChanged)] {
            do {
                _ = try await bob.verifyCallSetup(.call, forged, from: "alice", to: "bob", id: id)
                Issue.record("accepted forged body \(id)")
            } catch {
                #expect(error.code == code, "\(id): \(error)")
            }
        }
    }
}
