import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Identity (Ed25519 through libsodium), identity files, TOFU pins and signed call setup.
@Suite struct IdentityTests {
    @Test func signAndVerify() {
        let identity = Identity.generate()
        let signature = identity.sign(Array("hello".utf8))
        #expect(signature.count == 64)
        #expect(Identity.verify(signature: signature, message: Array("hello".utf8), publicKey: identity.publicKey))
        #expect(!Identity.verify(signature: signature, message: Array("hellO".utf8), publicKey: identity.publicKey))
        #expect(!Identity.verify(signature: signature, message: Array("hello".utf8), publicKey: Identity.generate().publicKey))
    }

    /// RFC 8032 §7.1 test 1: the seed gives the published public key and signature.
    @Test func rfc8032Vector() throws {
        let seed = hexBytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        let identity = try Identity(seed: seed)
        #expect(identity.publicKey == hexBytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
        #expect(identity.sign([]) == hexBytes("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"))
    }

    @Test func identityFileIsPrivateAndReloads() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-id-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sub/identity").path
        let created = try IdentityFile.create(at: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try IdentityFile.load(from: path).publicKey == created.publicKey)
        #expect(throws: SignalingError.self) { try IdentityFile.create(at: path) }
        try Data("garbage\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: SignalingError.self) { try IdentityFile.load(from: path) }
    }

    @Test func pinsTrustOnFirstUseAndRefuseAChangedKey() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pins-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let pins = KeyPins(path: file)
        #expect(try pins.check("bob@n:1", key: "K1") == .pinned)
        #expect(try pins.check("bob@n:1", key: "K1") == .known)
        do {
            try pins.check("bob@n:1", key: "K2")
            Issue.record("accepted a changed key")
        } catch {
            #expect(error.code == .keyChanged)
            #expect(error.reason.contains("bob@n:1") && error.reason.contains(file))
        }
        // Pins survive a restart of the client.
        #expect(try KeyPins(path: file).check("bob@n:1", key: "K1") == .known)
        #expect(throws: SignalingError.self) { try KeyPins(path: file).check("bob@n:1", key: "K2") }
    }

    @Test func signedCallSetupVerifies() throws {
        let alice = Identity.generate()
        let payload = CallPayload(type: .sdp, from: "alice", to: "bob", call: "c1", sdpType: "offer",
                                  sdp: "v=0\r\na=fingerprint:sha-256 AB:CD\r\n", ts: 1)
        let body = CallSigning.sign(payload, with: alice)
        #expect(try CallSigning.verify(body, type: .sdp, from: "alice", to: "bob", key: alice.publicKeyBase64) == payload)
    }

    /// DESIGN.md "Security model": a node that swaps the DTLS fingerprint is caught.
    @Test func tamperedCallSetupIsRejected() throws {
        let alice = Identity.generate()
        let mallory = Identity.generate()
        let payload = CallPayload(type: .sdp, from: "alice", to: "bob", call: "c1", sdpType: "offer",
                                  sdp: "a=fingerprint:sha-256 AB:CD", ts: 1)
        var body = CallSigning.sign(payload, with: alice)
        body.payload = body.payload.replacingOccurrences(of: "AB:CD", with: "EE:FF")
        #expect(throws: SignalingError.self) { try CallSigning.verify(body, type: .sdp, from: "alice", to: "bob", key: alice.publicKeyBase64) }
        // Re-signed by another key: refused against alice's key.
        let resigned = CallSigning.sign(payload, with: mallory)
        #expect(throws: SignalingError.self) { try CallSigning.verify(resigned, type: .sdp, from: "alice", to: "bob", key: alice.publicKeyBase64) }
        // A valid body replayed as another type or to another peer.
        let good = CallSigning.sign(payload, with: alice)
        #expect(throws: SignalingError.self) { try CallSigning.verify(good, type: .call, from: "alice", to: "bob", key: alice.publicKeyBase64) }
        #expect(throws: SignalingError.self) { try CallSigning.verify(good, type: .sdp, from: "alice", to: "carol", key: alice.publicKeyBase64) }
    }

    @Test func recentSetForgetsTheOldest() {
        var set = RecentSet(capacity: 2)
        let inserted = ["a", "a", "b", "c"].map { set.insert($0) }
        #expect(inserted == [true, false, true, true])
        #expect(!set.contains("a") && set.contains("b") && set.contains("c"))
    }
}
