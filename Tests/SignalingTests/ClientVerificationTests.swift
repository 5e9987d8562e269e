import Foundation
import Testing
@testable import Signaling

/// What a `SignalingClient` accepts from its node, with no node involved: a node that swaps
/// keys or bodies is caught at the receiver (DESIGN.md "Security model").
@Suite struct ClientVerificationTests {
    let bob = SignalingClient(url: "ws://127.0.0.1:1/ws", name: "bob", identity: .generate())

    @Test func firstKeyIsPinnedAndAChangedKeyIsRefused() async throws {
        let alice = Identity.generate()
        let call = CallSigning.sign(CallPayload(type: .call, from: "alice", to: "bob", call: "c1", kind: .audio, ts: Date().timeIntervalSince1970), with: alice)
        #expect(try await bob.verifyCallSetup(.call, call, from: "alice", to: "bob", id: "1").call == "c1")
        #expect(bob.pins.key(for: "alice@127.0.0.1:1") == alice.publicKeyBase64)
        // A node that substitutes its own key (and signs with it) is refused.
        let mallory = Identity.generate()
        let forged = CallSigning.sign(CallPayload(type: .sdp, from: "alice", to: "bob", call: "c1", sdp: "a=fingerprint:sha-256 EE", ts: Date().timeIntervalSince1970), with: mallory)
        await #expect(throws: SignalingError.self) { try await bob.verifyCallSetup(.sdp, forged, from: "alice", to: "bob", id: "2") }
        do {
            _ = try await bob.verifyCallSetup(.sdp, forged, from: "alice", to: "bob", id: "2")
        } catch {
            #expect(error.code == .keyChanged)
        }
    }

    @Test func alteredBodyIsRefused() async throws {
        let alice = Identity.generate()
        var body = CallSigning.sign(CallPayload(type: .sdp, from: "alice", to: "bob", call: "c1", sdp: "a=fingerprint:sha-256 AA", ts: Date().timeIntervalSince1970), with: alice)
        body.payload = body.payload.replacingOccurrences(of: "AA", with: "BB")
        do {
            _ = try await bob.verifyCallSetup(.sdp, body, from: "alice", to: "bob", id: "1")
            Issue.record("accepted an altered body")
        } catch {
            #expect(error.code == .badSignature)
        }
    }

    @Test func nodeURLsAreNormalised() {
        #expect(SignalingClient.webSocketURL("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/ws")
        #expect(SignalingClient.webSocketURL("https://node.example") == "wss://node.example/ws")
        #expect(SignalingClient.webSocketURL("ws://[::1]:8080/ws") == "ws://[::1]:8080/ws")
        #expect(SignalingClient.webSocketURL("127.0.0.1:8080") == "ws://127.0.0.1:8080/ws")
    }
}
