import Foundation
import MeshNode
import Signaling
import Testing
import TestSupport

/// Issue 15, finding 3 on loopback with real `meshnode serve` processes: a forged record
/// pointing at an attacker's port was probed, listed in `/mesh` and handed to every peer as a
/// relay; any key could join. Now records are used only for addresses this node proved by
/// dial-back, and `--mesh-key` closes the mesh.
@Suite(.serialized, .timeLimit(.minutes(3))) struct MeshTrustTests {
    /// A signed record of the node `key` at `node` offering a relay at `udpPort` of 127.0.0.1.
    static func record(_ key: Identity, node: String, udpPort: Int, seq: Int = Int(Date().timeIntervalSince1970 * 1000)) -> SignedNodeRecord {
        NodeRecord(node: node, key: key.publicKeyBase64, stun: ["stun:127.0.0.1:\(udpPort)"], turn: ["turn:127.0.0.1:\(udpPort)?transport=udp"],
                   reachability: .reachable, relay: true, capacity: 100, load: 0, version: "0.1.0", seq: seq,
                   expires: Date().timeIntervalSince1970 + 120, links: []).signed(by: key)
    }

    @Test func aForgedRecordPointingAtAnAttackersPortIsNeverProbedListedOrOffered() async throws {
        // The attacker runs a real node E (so that a link as E is proven) and a rogue "relay":
        // a UDP port that counts what arrives.
        let eKey = try NodeKeyFile()
        let e = try await MeshNodeServer(["--bind", "127.0.0.1", "--node-key", eKey.path], bind: [])
        defer { e.stop() }
        let b = try await MeshNodeServer(["--bind", "127.0.0.1", "--gossip-interval", "1"], bind: [])
        defer { b.stop() }
        let rogue = try UDPCounter()
        let link = RawSignalingSocket(url: b.signalingURL)
        defer { link.close() }
        let answer = try await link.link(as: e.nodeAddress, eKey.identity, to: b.nodeAddress)
        guard case .linked(let linked) = answer.payload else { throw TestFailure("expected linked, got \(answer)") }
        #expect(linked.proven == true)

        // A record of a fresh key for an address nobody answers at, relay at the rogue port.
        let forger = Identity.generate()
        let forged = Self.record(forger, node: "127.0.0.9:9", udpPort: rogue.port)
        link.send(SignalingMessage(id: "g1", from: "@node", to: "@node", payload: .mesh(MeshBody(records: [forged]))))
        // Legitimate use goes on: E's own record (its real STUN/TURN port) over its own link is
        // used at once: B measures it and hands it out. Once it does, a probe round has run
        // since the forged record arrived.
        link.send(SignalingMessage(id: "g2", from: "@node", to: "@node", payload: .mesh(MeshBody(records: [Self.record(eKey.identity, node: e.nodeAddress, udpPort: e.udpPort)]))))
        try await waitUntil("E measured and handed out by B") {
            guard let view = try? await b.meshStatus() else { return false }
            return view.relays.contains(e.nodeAddress) && view.nodes.contains { $0.node == e.nodeAddress && $0.rttMs != nil }
        }
        let view = try await b.meshStatus()
        #expect(!view.nodes.contains { $0.key == forger.publicKeyBase64 }, "the forged record is listed in /mesh")
        #expect(!view.relays.contains("127.0.0.9:9"))
        #expect(view.unproven == 1)
        #expect(rogue.received() == 0, "B probed the rogue port")
        let alice = SignalingClient(url: b.signalingURL, name: "alice", identity: .generate(), requestTimeout: .seconds(20))
        let welcome = try await alice.connect()
        await alice.close()
        let urls = welcome.iceServers.flatMap(\.urls)
        #expect(!urls.contains { $0.contains(":\(rogue.port)") }, "the rogue relay was handed out: \(urls)")
        #expect(urls.contains("turn:127.0.0.1:\(e.udpPort)?transport=udp"), "E, proven, is not handed out: \(urls)")
    }

    @Test func withMeshKeysOnlyTheAllowedNodesGetIn() async throws {
        let aKey = try NodeKeyFile()
        let b = try await MeshNodeServer(["--bind", "127.0.0.1", "--gossip-interval", "1", "--mesh-key", aKey.identity.publicKeyBase64], bind: [])
        defer { b.stop() }
        let a = try await MeshNodeServer(["--bind", "127.0.0.1", "--gossip-interval", "1", "--node-key", aKey.path, "--link", b.signalingURL], bind: [])
        defer { a.stop() }
        let c = try await MeshNodeServer(["--bind", "127.0.0.1", "--gossip-interval", "1", "--link", b.signalingURL], bind: [])
        defer { c.stop() }
        try await waitUntil("A linked and known at B") {
            guard let view = try? await b.meshStatus() else { return false }
            return view.links == [a.nodeAddress] && view.nodes.contains { $0.node == a.nodeAddress }
        }
        try await c.process.waitForOutput("not one of its mesh keys")
        let view = try await b.meshStatus()
        #expect(!view.links.contains(c.nodeAddress) && !view.nodes.contains { $0.node == c.nodeAddress })
        // A raw link with C's address and a stranger's key is refused the same way.
        let raw = RawSignalingSocket(url: b.signalingURL)
        defer { raw.close() }
        let answer = try await raw.link(as: "127.0.0.1:1", .generate(), to: b.nodeAddress)
        guard case .error(let refusal) = answer.payload else { throw TestFailure("expected a refusal, got \(answer)") }
        #expect(refusal.code == .forbidden)
    }
}

/// A UDP socket on 127.0.0.1 that counts the datagrams it receives.
final class UDPCounter: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else {
            close(fd)
            throw TestFailure("cannot bind a UDP socket")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Datagrams waiting now.
    func received() -> Int {
        var count = 0
        var buffer = [UInt8](repeating: 0, count: 2048)
        while recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) >= 0 { count += 1 }
        return count
    }

    deinit { close(fd) }
}
