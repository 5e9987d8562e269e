import Foundation
import Testing
import TestSupport
@testable import Signaling

/// `meshnode devices` as a user runs it (docs/protocol.md "Devices"): the owner's CLI shows a
/// code, a new device claims it, the CLI endorses it (`--yes`), lists both, removes it.
@Suite(.serialized, .timeLimit(.minutes(2))) struct DevicesCLITests {
    @Test("devices link shows a code and endorses the device that types it; list shows both; remove cuts it off; a linked device cannot link")
    func linkListRemove() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let directory = TemporaryDirectory("devices-cli")
        let identity = directory.path + "/owner"
        #expect(await (try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", identity])).waitForExit() == 0)
        let common = ["--node", node.signalingURL, "--name", "dora", "--identity", identity, "--known-peers", directory.path + "/pins.json"]
        let link = try Subprocess(MeshNodeServer.binary, ["devices"] + common + ["link", "--yes"])
        try await link.waitForOutput("code: ")
        let code = try #require(link.output.split(separator: "\n").first { $0.hasPrefix("code: ") }.map { String($0.dropFirst(6).prefix(6)) })
        let phoneKey = Identity.generate()
        let phone = RawSignalingSocket(url: node.signalingURL)
        _ = try await phone.next()
        phone.send(SignalingMessage(id: "claim", from: "", to: "@node", payload: .device(.claim(DeviceClaimBody(name: "dora", code: code, key: phoneKey.publicKeyBase64)))))
        var added: DeviceAddedBody?
        for _ in 0..<5 where added == nil {
            if case .device(.added(let body)) = try await phone.next().payload { added = body }
        }
        #expect(added?.of == "claim")
        #expect(await link.waitForExit() == 0)
        #expect(link.output.contains("added \(phoneKey.publicKeyBase64)"), "\(link.output)")
        phone.close()

        let device = RawSignalingSocket(url: node.signalingURL)
        try await device.login("dora", phoneKey)
        let list = try Subprocess(MeshNodeServer.binary, ["devices"] + common + ["list"])
        #expect(await list.waitForExit() == 0)
        #expect(list.output.contains("\(phoneKey.publicKeyBase64) linked online"), "\(list.output)")
        let remove = try Subprocess(MeshNodeServer.binary, ["devices"] + common + ["remove", phoneKey.publicKeyBase64])
        #expect(await remove.waitForExit() == 0)
        var revoked = false
        for _ in 0..<5 where !revoked {
            if case .error(let body) = try await device.next().payload { revoked = body.code == .revoked }
        }
        #expect(revoked)
    }
}
