import Foundation
import MeshNode
import Signaling
import Testing
import TestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Issue 8 on loopback with real `meshnode serve` processes: membership by gossip, dial-back,
/// relays at login with mesh-wide TURN credentials, a node that leaves. Node C binds
/// 127.0.0.2 but its link to A comes from 127.0.0.1: to A it looks like a node behind a NAT
/// (its advertised address is not where it connects from), so dial-back must not vouch for it.
@Suite(.serialized, .timeLimit(.minutes(2))) struct MeshTests {
    func status(_ node: MeshNodeServer, host: String = "127.0.0.1") async throws -> MeshStatus {
        try await node.meshStatus(host: host)
    }

    /// Waits until `check` holds; a node that does not answer yet counts as not yet.
    func waitFor(_ what: String, _ check: () async throws -> Bool) async throws {
        try await waitUntil(what, interval: .milliseconds(50)) { (try? await check()) == true }
    }

    /// When `view`'s copy of `node`'s record expires (Unix time): a later copy expires later.
    func expiry(of node: String, in view: MeshStatus) -> Double? {
        view.nodes.first { $0.node == node }?.expiresIn.map { view.time + $0 }
    }

    @Test func threeNodesConvergeTheNATedOneIsNeverARelayAndCredentialsWorkMeshWide() async throws {
        let gossip = ["--gossip-interval", "1"]
        let a = try await MeshNodeServer(["--bind", "127.0.0.1"] + gossip, bind: [])
        defer { a.stop() }
        let start = ContinuousClock.now
        let b = try await MeshNodeServer(["--bind", "127.0.0.1", "--link", a.signalingURL] + gossip, bind: [])
        defer { b.stop() }
        let c = try await MeshNodeServer(["--bind", "127.0.0.2", "--link", a.signalingURL] + gossip, bind: [])
        defer { c.stop() }
        let (aAddress, bAddress, cAddress) = ("127.0.0.1:\(a.httpPort)", "127.0.0.1:\(b.httpPort)", "127.0.0.2:\(c.httpPort)")

        // Membership: every node knows the other two; B and C learn each other only through A.
        try await waitFor("all three nodes to know each other") {
            let views = [try await status(a), try await status(b), try await status(c, host: "127.0.0.2")]
            return views.allSatisfy { $0.nodes.count == 3 }
        }
        let converged = ContinuousClock.now - start
        let bView = try await status(b)
        let cInB = try #require(bView.nodes.first { $0.node == cAddress })
        #expect(cInB.via == aAddress && !cInB.linked)

        // Reachability: A and B verified from outside, C not; the verdict reaches the others.
        try await waitFor("dial-back verdicts in every view") {
            let aView = try await status(a)
            let cView = try await status(c, host: "127.0.0.2")
            let bView = try await status(b)
            return aView.relay && bView.relay && cView.reachability == "unreachable"
                && bView.nodes.first { $0.node == cAddress }?.reachability == "unreachable"
        }
        let aView = try await status(a)
        let cView = try await status(c, host: "127.0.0.2")
        #expect(!cView.relay)
        for view in [aView, try await status(b), cView] {
            #expect(!view.relays.contains(cAddress), "C offered as a relay by \(view.node)")
            #expect(view.nodes.first { $0.node == cAddress }?.relay == false)
        }
        #expect(cView.checkedBy == [aAddress])
        print("mesh on loopback: 3 nodes converged in \(Int(converged.inMilliseconds)) ms; dial-back A \(aView.dialbackMs ?? -1) ms, C \(cView.dialbackMs ?? -1) ms")

        // Mesh-wide credentials: alice at B gets A's TURN with credentials B issued; A accepts them.
        try await waitFor("A among B's relays") { try await status(b).relays.contains(aAddress) }
        let alice = SignalingClient(url: b.signalingURL, name: "alice", identity: .generate(), requestTimeout: .seconds(20))
        let welcome = try await alice.connect()
        await alice.close()
        let atA = try #require(welcome.iceServers.first { $0.urls.contains("turn:127.0.0.1:\(a.udpPort)?transport=udp") })
        let username = try #require(atA.username)
        #expect(username.hasSuffix(":alice") && username.split(separator: ":").count == 3)
        let allocation = try TURNTestClient(port: a.udpPort, username: username, password: try #require(atA.credential)).allocate()
        #expect(allocation.isSuccess, "A refused B's credentials: \(allocation.code ?? 0)")
        // The same credentials are worthless at C (they were made for A).
        let atC = try TURNTestClient(port: c.udpPort, host: "127.0.0.2", username: username, password: atA.credential!).allocate()
        #expect(atC.code == 401)
        // Nothing in the welcome points at C.
        #expect(!welcome.iceServers.flatMap(\.urls).contains { $0.contains("127.0.0.2") })

        // A node that leaves (SIGTERM) is dropped everywhere. That its leaving record, not the
        // expiry of its last one, drops it is MeshDirectoryTests' part (on a clock of its own).
        c.stop()
        let left = ContinuousClock.now
        try await waitFor("C to be dropped") {
            let aCount = try await status(a).nodes.count
            let bCount = try await status(b).nodes.count
            return aCount == 2 && bCount == 2
        }
        print("mesh on loopback: a leaving node dropped everywhere in \(Int((ContinuousClock.now - left).inMilliseconds)) ms")
        // And it stays dropped: nothing it sent before leaving brings it back. Records travel a
        // link in order, so once each node has a newer record from the other, every copy of C's
        // that was on its way has arrived.
        let (aDropped, bDropped) = (try await status(a), try await status(b))
        let bAtA = try #require(expiry(of: bAddress, in: aDropped))
        let aAtB = try #require(expiry(of: aAddress, in: bDropped))
        try await waitFor("a newer record of B at A and of A at B") {
            let (aNow, bNow) = (try await status(a), try await status(b))
            return (expiry(of: bAddress, in: aNow) ?? 0) > bAtA && (expiry(of: aAddress, in: bNow) ?? 0) > aAtB
        }
        #expect(try await status(a).nodes.map(\.node).sorted() == [aAddress, bAddress].sorted())
        #expect(try await status(b).nodes.map(\.node).sorted() == [aAddress, bAddress].sorted())
    }

    /// Issue 8, item 7: at `max-connections` the node refuses further WebSocket clients (close
    /// 1013 Try Again Later with a reason) instead of running out of file descriptors, and the
    /// clients it holds carry on.
    @Test func connectionCapRefusesExtraClientsAndKeepsTheOthers() async throws {
        let node = try await MeshNodeServer(["--bind", "127.0.0.1", "--max-connections", "2"], bind: [])
        defer { node.stop() }
        let first = RawSignalingSocket(url: node.signalingURL)
        try await first.login("one", .generate())
        let second = RawSignalingSocket(url: node.signalingURL)
        try await second.login("two", .generate())

        let refused = try rawWebSocketUpgrade(port: node.httpPort)
        #expect(refused.status.hasPrefix("HTTP/1.1 101"), "\(refused.status)")
        #expect(refused.opcode == 0x8, "the first frame closes the connection")
        #expect(refused.closeCode == 1013)
        #expect(refused.reason.contains("max-connections"), "\(refused.reason)")
        // The clients already there are unaffected.
        first.send(SignalingMessage(id: "p1", from: "", to: "@node", payload: .ping))
        #expect(try await first.next().payload == .pong)
        second.send(SignalingMessage(id: "p2", from: "", to: "@node", payload: .ping))
        #expect(try await second.next().payload == .pong)

        // A slot that frees up is usable again: the node's first frame is its challenge (text).
        first.close()
        try await waitFor("a freed slot") { try rawWebSocketUpgrade(port: node.httpPort).opcode == 0x1 }
        second.close()
    }

    /// Issue 15: one address cannot take the node's whole connection budget
    /// (`max-connections-per-ip`); its connections beyond the share are closed with 1013 and a
    /// reason, the ones it holds carry on, and a freed place is usable again.
    @Test func oneAddressCannotTakeEveryConnection() async throws {
        let node = try await MeshNodeServer(["--bind", "127.0.0.1", "--max-connections-per-ip", "2"], bind: [])
        defer { node.stop() }
        let first = RawSignalingSocket(url: node.signalingURL)
        try await first.login("one", .generate())
        let second = RawSignalingSocket(url: node.signalingURL)
        try await second.login("two", .generate())
        let refused = try rawWebSocketUpgrade(port: node.httpPort)
        #expect(refused.closeCode == 1013)
        #expect(refused.reason.contains("max-connections-per-ip"), "\(refused.reason)")
        first.send(SignalingMessage(id: "p1", from: "", to: "@node", payload: .ping))
        #expect(try await first.next().payload == .pong)
        first.close()
        try await waitFor("a freed place") { try rawWebSocketUpgrade(port: node.httpPort).opcode == 0x1 }
        second.close()
    }

}
