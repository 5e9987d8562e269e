import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Device linking and several devices per name (docs/protocol.md "Devices"), played by raw
/// clients against the hub: the owner links a device by code, only the owner key endorses,
/// a revoked key is cut off, and a flood of guessed codes gets nowhere.
@Suite struct HubDeviceTests {
    static var now: Double { Date().timeIntervalSince1970 }

    /// The owner asks for a code; returns it.
    static func code(_ owner: TestPeer) async throws -> String {
        await owner.send(.device(.code(DeviceCodeBody())), id: "code")
        return try await owner.next { if case .device(.code(let body)) = $0.payload { body.code } else { nil } }
    }

    /// Links a fresh key to `name` through a code, as the page does; returns the new device logged in.
    static func link(_ name: String, owner: TestPeer, ownerKey: Identity, on node: HubFixture) async throws -> (TestPeer, Identity, WelcomeBody) {
        let code = try await code(owner)
        let device = Identity.generate()
        let newcomer = await node.peer()
        _ = try await newcomer.next()  // challenge
        await newcomer.send(.device(.claim(DeviceClaimBody(name: name, code: code, key: device.publicKeyBase64))), id: "claim")
        #expect(try await newcomer.ack().of == "claim")
        let request = try await owner.next { if case .device(.request(let body)) = $0.payload { body } else { nil } }
        #expect(request.key == device.publicKeyBase64 && request.claim == "claim")
        let sig = ownerKey.sign(text: DeviceRules.endorsementText(name: name, key: request.key))
        await owner.send(.device(.endorse(EndorseBody(key: request.key, sig: sig))), id: "endorse")
        #expect(try await owner.ack().of == "endorse")
        let added = try await newcomer.next { if case .device(.added(let body)) = $0.payload { body } else { nil } }
        #expect(added.of == "claim" && added.owner == ownerKey.publicKeyBase64 && added.endorsement == sig)
        let peer = await node.peer()
        let welcome = try await peer.login(name, device)
        return (peer, device, welcome)
    }

    @Test("a device linked by code logs in with its own key beside the owner; chat reaches both; presence shows the owner key")
    func linkedDeviceLogsIn() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("alice", "carol")
        let (alice, aliceKey) = peers[0]
        let carol = peers[1].peer
        await carol.send(.subscribe(NamesBody(names: ["alice"])))
        _ = try await carol.ack()
        _ = try await carol.next { if case .presence = $0.payload { true } else { nil } }
        let (phone, phoneKey, welcome) = try await Self.link("alice", owner: alice, ownerKey: aliceKey, on: node)
        #expect(welcome.key == phoneKey.publicKeyBase64 && welcome.owner == aliceKey.publicKeyBase64)
        #expect(DeviceRules.verify(endorsement: try #require(welcome.endorsement), name: "alice", key: phoneKey.publicKeyBase64, owner: aliceKey.publicKeyBase64))
        #expect(!(await alice.isClosed), "a second key's login must not replace the first device")
        await carol.send(.chat(ChatBody(text: "to both")), to: "alice", id: "m1")
        #expect(try await carol.ack().of == "m1")
        for device in [alice, phone] {
            let chat = try await device.next { if case .chat(let body) = $0.payload { body.text } else { nil } }
            #expect(chat == "to both")
        }
        await alice.send(.device(.devices(DevicesBody())), id: "list")
        let list = try await alice.next { if case .device(.devices(let body)) = $0.payload { body.devices } else { nil } }
        #expect(list.map(\.key) == [aliceKey.publicKeyBase64, phoneKey.publicKeyBase64] && list.allSatisfy(\.online) && list[0].owner)
        // The owner going offline leaves the name online on the phone: no offline presence.
        await alice.send(.ping, id: "p")
        await node.hub.closed(alice.handle.id)
        await carol.send(.ping, id: "marker")
        try await carol.expectNext(id: "marker", "no offline presence while the phone is online")
        await node.close()
    }

    @Test("an endorsement by a linked device, or signed by another key than the owner's, is refused; a stranger's key cannot log in")
    func endorsementByNonOwnerIsRefused() async throws {
        let node = try await HubFixture()
        let (alice, aliceKey) = try await node.loggedIn("alice")[0]
        let (phone, phoneKey, _) = try await Self.link("alice", owner: alice, ownerKey: aliceKey, on: node)
        let stranger = Identity.generate()
        // The linked phone signs an endorsement with its own key.
        await phone.send(.device(.endorse(EndorseBody(key: stranger.publicKeyBase64,
                                                      sig: phoneKey.sign(text: DeviceRules.endorsementText(name: "alice", key: stranger.publicKeyBase64))))), id: "e1")
        let byDevice = try await phone.error()
        #expect(byDevice.code == .forbidden && byDevice.of == "e1", "\(byDevice)")
        await phone.send(.device(.code(DeviceCodeBody())), id: "c1")
        #expect(try await phone.error().code == .forbidden)
        // The owner's connection sends an endorsement signed by another key: checked by key.
        await alice.send(.device(.endorse(EndorseBody(key: stranger.publicKeyBase64,
                                                      sig: stranger.sign(text: DeviceRules.endorsementText(name: "alice", key: stranger.publicKeyBase64))))), id: "e2")
        #expect(try await alice.error().code == .badSignature)
        // An owner's endorsement for another name does not pass for this one.
        await alice.send(.device(.endorse(EndorseBody(key: stranger.publicKeyBase64,
                                                      sig: aliceKey.sign(text: DeviceRules.endorsementText(name: "bob", key: stranger.publicKeyBase64))))), id: "e3")
        #expect(try await alice.error().code == .badSignature)
        let peer = await node.peer()
        let nonce = try await peer.next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        await peer.send(.login(LoginBody.signed(name: "alice", identity: stranger, nonce: nonce)))
        #expect(try await peer.error().code == .nameTaken)
        await node.close()
    }

    @Test("a revoked device is disconnected with `revoked` and cannot log in again; the owner key cannot be revoked")
    func revokedKeyIsRefused() async throws {
        let node = try await HubFixture()
        let (alice, aliceKey) = try await node.loggedIn("alice")[0]
        let (phone, phoneKey, _) = try await Self.link("alice", owner: alice, ownerKey: aliceKey, on: node)
        await phone.send(.device(.revoke(RevokeBody(key: aliceKey.publicKeyBase64))), id: "r0")
        #expect(try await phone.error().code == .forbidden, "a linked device may not remove the owner")
        await alice.send(.device(.revoke(RevokeBody(key: aliceKey.publicKeyBase64))), id: "r1")
        #expect(try await alice.error().code == .badField)
        await alice.send(.device(.revoke(RevokeBody(key: phoneKey.publicKeyBase64))), id: "r2")
        #expect(try await alice.ack().of == "r2")
        #expect(try await phone.error().code == .revoked)
        _ = try await waitFor("the revoked device's connection to close", limit: TestDeadline.event) { await phone.isClosed ? true : nil }
        let again = await node.peer()
        let nonce = try await again.next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        await again.send(.login(LoginBody.signed(name: "alice", identity: phoneKey, nonce: nonce)))
        #expect(try await again.error().code == .nameTaken)
        #expect(!(await alice.isClosed))
        await node.close()
    }

    @Test("guessing a code: 5 wrong tries void it (the right code then fails), claims over the node's rate are refused, a code expires")
    func codeGuessingIsLimited() async throws {
        let clock = ManualClock()
        let node = try await HubFixture(clock: clock)
        let (alice, _) = try await node.loggedIn("alice")[0]
        let code = try await Self.code(alice)
        let attacker = await node.peer()
        _ = try await attacker.next()
        let key = Identity.generate().publicKeyBase64
        var tried = 0
        for guess in 0..<DeviceRules.maxAttempts {
            let wrong = String(format: "%06d", (Int(code)! + 1 + guess) % 1_000_000)
            await attacker.send(.device(.claim(DeviceClaimBody(name: "alice", code: wrong, key: key))), id: "g\(guess)")
            #expect(try await attacker.error().code == .forbidden)
            tried += 1
        }
        let void = try await alice.error()
        #expect(void.code == .forbidden && void.reason.contains("void"), "\(void)")
        await attacker.send(.device(.claim(DeviceClaimBody(name: "alice", code: code, key: key))), id: "right")
        #expect(try await attacker.error().code == .forbidden, "a void code must not take the right guess")
        // A flood without the clock moving: the node-wide bucket runs dry and claims are refused unread.
        let fresh = try await Self.code(alice)
        var limited = 0
        for guess in 0..<40 {
            await attacker.send(.device(.claim(DeviceClaimBody(name: "nobody\(guess)", code: "000000", key: key))), id: "f\(guess)")
            if try await attacker.error().code == .rateLimited { limited += 1 }
        }
        #expect(limited >= 40 - Int(DeviceRules.claimBurst), "\(limited) of 40 claims were rate-limited")
        // Expiry: the right code, after its lifetime, is refused; the bucket refilled by then.
        clock.advance(by: DeviceRules.codeLifetime + .seconds(1))
        await attacker.send(.device(.claim(DeviceClaimBody(name: "alice", code: fresh, key: key))), id: "late")
        #expect(try await attacker.error().code == .forbidden)
        await node.close()
    }

    @Test("a call rings on both devices; the first accept takes it, the other device is told and its late accept refused; the offer reaches the taker only")
    func firstDeviceToAcceptTakesTheCall() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("alice", "bob")
        let (alice, aliceKey) = peers[0]
        let (bob, bobKey) = peers[1]
        let (phone, phoneKey, _) = try await Self.link("alice", owner: alice, ownerKey: aliceKey, on: node)
        let call = CallSigning.sign(CallPayload(type: .call, from: "bob", to: "alice", call: "c1", kind: .audio, ts: Self.now), with: bobKey)
        await bob.send(.callSetup(.call, call), to: "alice", id: "ring")
        #expect(try await bob.ack().of == "ring")
        for device in [alice, phone] {
            #expect(try await device.next { if case .callSetup(.call, let body) = $0.payload { body } else { nil } } == call)
        }
        // The phone accepts: its body reaches bob with the owner's endorsement of the phone key.
        let accept = CallSigning.sign(CallPayload(type: .accept, from: "alice", to: "bob", call: "c1", ts: Self.now), with: phoneKey)
        await phone.send(.callSetup(.accept, accept), to: "bob", id: "take")
        #expect(try await phone.ack().of == "take")
        let relayed = try await bob.next { if case .callSetup(.accept, let body) = $0.payload { body } else { nil } }
        #expect(relayed.owner == aliceKey.publicKeyBase64)
        #expect(DeviceRules.verify(endorsement: try #require(relayed.endorsement), name: "alice", key: phoneKey.publicKeyBase64, owner: aliceKey.publicKeyBase64))
        let elsewhere = try await alice.next { if case .device(.answeredElsewhere(let body)) = $0.payload { body } else { nil } }
        #expect(elsewhere == AnsweredElsewhereBody(call: "c1", answer: "accept"))
        let late = CallSigning.sign(CallPayload(type: .accept, from: "alice", to: "bob", call: "c1", ts: Self.now), with: aliceKey)
        await alice.send(.callSetup(.accept, late), to: "bob", id: "late")
        #expect(try await alice.error().code == .forbidden)
        let offer = CallSigning.sign(CallPayload(type: .sdp, from: "bob", to: "alice", call: "c1", sdpType: "offer", sdp: "v=0", ts: Self.now), with: bobKey)
        await bob.send(.callSetup(.sdp, offer), to: "alice", id: "offer")
        #expect(try await phone.next { if case .callSetup(.sdp, let body) = $0.payload { body } else { nil } } == offer)
        await bob.send(.chat(ChatBody(text: "marker")), to: "alice", id: "marker")
        try await alice.expectNext(id: "marker", "the chat, not the offer that went to the phone")
        await node.close()
    }

    @Test("busy from one device while another still rings does not reach the caller; busy from the last does")
    func busyFromOneDeviceWaits() async throws {
        let node = try await HubFixture()
        let peers = try await node.loggedIn("alice", "bob")
        let (alice, aliceKey) = peers[0]
        let (bob, bobKey) = peers[1]
        let (phone, phoneKey, _) = try await Self.link("alice", owner: alice, ownerKey: aliceKey, on: node)
        let call = CallSigning.sign(CallPayload(type: .call, from: "bob", to: "alice", call: "c2", kind: .audio, ts: Self.now), with: bobKey)
        await bob.send(.callSetup(.call, call), to: "alice", id: "ring")
        _ = try await bob.ack()
        await alice.send(.callSetup(.busy, CallSigning.sign(CallPayload(type: .busy, from: "alice", to: "bob", call: "c2", ts: Self.now), with: aliceKey)), to: "bob", id: "b1")
        #expect(try await alice.ack().of == "b1")
        await alice.send(.chat(ChatBody(text: "marker")), to: "bob", id: "marker")
        _ = try await alice.ack()
        try await bob.expectNext(id: "marker", "no busy while the phone still rings")
        await phone.send(.callSetup(.busy, CallSigning.sign(CallPayload(type: .busy, from: "alice", to: "bob", call: "c2", ts: Self.now), with: phoneKey)), to: "bob", id: "b2")
        #expect(try await bob.next { if case .callSetup(.busy, _) = $0.payload { true } else { nil } })
        await node.close()
    }

    @Test("a device waiting for the owner's answer stays past the login timeout while it pings, and is told when the code expires")
    func claimWaitsPastTheLoginTimeout() async throws {
        let clock = ManualClock()
        let node = try await HubFixture(clock: clock)
        let (alice, _) = try await node.loggedIn("alice")[0]
        let code = try await Self.code(alice)
        let newcomer = await node.peer()
        _ = try await newcomer.next()
        await newcomer.send(.device(.claim(DeviceClaimBody(name: "alice", code: code, key: Identity.generate().publicKeyBase64))), id: "claim")
        _ = try await newcomer.ack()
        // Past the 30 s login timeout and on to the code's expiry, pinging every 10 s (the
        // heartbeat is 15 s): the connection stays, and the sweep after expiry tells it.
        var told: ErrorBody?
        for step in 1...Int(DeviceRules.codeLifetime.components.seconds / 10) + 1 {
            clock.advance(by: .seconds(10))
            await node.hub.sweep()
            await newcomer.send(.ping, id: "mark\(step)")
            let next = try await newcomer.next()
            if case .error(let body) = next.payload { told = body; break }
            #expect(next.id == "mark\(step)", "\(next)")
            if step == 4 { #expect(!(await newcomer.isClosed), "a waiting claim was dropped as a connection that did not log in") }
        }
        #expect(told?.code == .timeout && told?.of == "claim", "\(String(describing: told))")
        await node.close()
    }
}
