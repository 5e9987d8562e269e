import Foundation
import Testing
import TestSupport
@testable import Signaling

/// The CLI's client as a linked device (docs/protocol.md "Devices"), against a real node: a
/// key endorsed through a link code logs in beside the owner, rings with it, and hears
/// `answered-elsewhere` when the owner takes the call.
@Suite(.serialized, .timeLimit(.minutes(2))) struct DeviceClientTests {
    @Test("a SignalingClient with an endorsed key logs in beside the owner, gets the call, and reports answered-elsewhere when the owner accepts")
    func linkedClientHearsAnsweredElsewhere() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let ownerKey = Identity.generate(), phoneKey = Identity.generate(), bobKey = Identity.generate()
        let owner = RawSignalingSocket(url: node.signalingURL)
        try await owner.login("ann", ownerKey)
        owner.send(SignalingMessage(id: "code", from: "", to: "@node", payload: .device(.code(DeviceCodeBody()))))
        let code = try #require(try await next(owner) { if case .device(.code(let body)) = $0.payload { body.code } else { nil } })
        let claimer = RawSignalingSocket(url: node.signalingURL)
        _ = try await claimer.next()
        claimer.send(SignalingMessage(id: "claim", from: "", to: "@node", payload: .device(.claim(DeviceClaimBody(name: "ann", code: code, key: phoneKey.publicKeyBase64)))))
        _ = try await next(owner) { if case .device(.request(let body)) = $0.payload { body } else { nil } }
        owner.send(SignalingMessage(id: "endorse", from: "", to: "@node", payload: .device(.endorse(EndorseBody(
            key: phoneKey.publicKeyBase64, sig: ownerKey.sign(text: DeviceRules.endorsementText(name: "ann", key: phoneKey.publicKeyBase64)))))))
        _ = try await next(claimer) { if case .device(.added(let body)) = $0.payload { body } else { nil } }
        claimer.close()

        let phone = SignalingClient(url: node.signalingURL, name: "ann", identity: phoneKey, requestTimeout: .seconds(20))
        let events = EventLog(phone)
        try await phone.connect()
        let bob = RawSignalingSocket(url: node.signalingURL)
        try await bob.login("bob", bobKey)
        let now = Date().timeIntervalSince1970
        bob.send(SignalingMessage(id: "ring", from: "", to: "ann", payload: .callSetup(.call, CallSigning.sign(
            CallPayload(type: .call, from: "bob", to: "ann", call: "c-dev", kind: .audio, ts: now), with: bobKey))))
        let rang = try await events.wait { if case .callSetup(let payload) = $0, payload.type == .call { payload.call } else { nil } }
        #expect(rang == "c-dev")
        _ = try await next(owner) { if case .callSetup(.call, _) = $0.payload { true } else { nil } }
        owner.send(SignalingMessage(id: "take", from: "", to: "bob", payload: .callSetup(.accept, CallSigning.sign(
            CallPayload(type: .accept, from: "ann", to: "bob", call: "c-dev", ts: now), with: ownerKey))))
        let elsewhere = try await events.wait { if case .answeredElsewhere(let call) = $0 { call } else { nil } }
        #expect(elsewhere == "c-dev")
        await phone.close()
        owner.close()
        bob.close()
    }

    private func next<T>(_ socket: RawSignalingSocket, _ match: (SignalingMessage) -> T?) async throws -> T {
        for _ in 0..<50 {
            if let value = match(try await socket.next()) { return value }
        }
        throw TestFailure("no matching frame in 50")
    }
}
