import Foundation
import Signaling
import Testing
import TestSupport

/// Issue 3, item 7 and "Done when": peers at two linked nodes see each other come online, chat
/// both ways and set up a call, addressing each other as `name@host:port`.
@Suite(.serialized, .timeLimit(.minutes(2))) struct NodeLinkTests {
    func client(_ node: MeshNodeServer, _ name: String) -> SignalingClient {
        SignalingClient(url: node.signalingURL, name: name, identity: .generate(), requestTimeout: .seconds(20))
    }

    @Test func presenceChatAndCallAcrossALink() async throws {
        let east = try await MeshNodeServer(["--bind", "127.0.0.1"], bind: [])
        defer { east.stop() }
        let westData = TemporaryDirectory("west")
        let west = try await MeshNodeServer(["--bind", "127.0.0.1", "--data-dir", westData.path, "--link", east.signalingURL], bind: [])
        defer { west.stop() }
        let eastAddress = "127.0.0.1:\(east.httpPort)"
        let westAddress = "127.0.0.1:\(west.httpPort)"

        let bob = client(east, "bob")
        let bobEvents = EventLog(bob)
        try await bob.connect()
        let alice = client(west, "alice")
        let aliceEvents = EventLog(alice)
        try await alice.connect()

        // Presence across the link, once the link is up (west dials east at startup).
        try await alice.subscribe(["bob@\(eastAddress)"])
        try await aliceEvents.wait {
            if case .presence(let p) = $0, p.name == "bob@\(eastAddress)", p.status == .online { p } else { nil }
        }
        try await bob.subscribe(["alice@\(westAddress)"])
        try await bobEvents.wait { if case .presence(let p) = $0, p.name == "alice@\(westAddress)", p.status == .online { p } else { nil } }

        // Chat both ways, with a round trip figure.
        let start = ContinuousClock.now
        #expect(try await alice.send(text: "hello east", to: "bob@\(eastAddress)", id: "x1") == .ok)
        let received = try await bobEvents.wait { if case .chat(let m) = $0, m.text == "hello east" { m } else { nil } }
        let trip = ContinuousClock.now - start
        #expect(received.from == "alice@\(westAddress)")
        #expect(try await alice.send(text: "hello east", to: "bob@\(eastAddress)", id: "x1") == .duplicate)
        #expect(try await bob.send(text: "hello west", to: received.from) == .ok)
        try await aliceEvents.wait { if case .chat(let m) = $0, m.text == "hello west", m.from == "bob@\(eastAddress)" { m } else { nil } }

        // Call setup: signed by alice, relayed by both nodes, verified by bob; bob accepts.
        let callID = try await alice.call("bob@\(eastAddress)", kind: .audio)
        let ring = try await bobEvents.wait { if case .callSetup(let p) = $0, p.type == .call { p } else { nil } }
        #expect(ring.call == callID && ring.from == "alice@\(westAddress)")
        try await bob.callSetup(.accept, to: ring.from, call: callID)
        let accepted = try await aliceEvents.wait { if case .callSetup(let p) = $0, p.type == .accept { p } else { nil } }
        #expect(accepted.call == callID && accepted.from == "bob@\(eastAddress)")

        // Offline at the other node: stored there, delivered at the next login.
        let bobIdentity = bob.identity
        await bob.close()
        try await aliceEvents.wait { if case .presence(let p) = $0, p.name == "bob@\(eastAddress)", p.status == .offline { p } else { nil } }
        #expect(try await alice.send(text: "while you were out", to: "bob@\(eastAddress)") == .ok)
        // Usually east has stored it by the time bob is back (no client sees that moment); on a
        // busy machine it may arrive after his login and be delivered live. Either way he gets it.
        try await Task.sleep(for: .milliseconds(300))
        let back = SignalingClient(url: east.signalingURL, name: "bob", identity: bobIdentity)
        let backEvents = EventLog(back)
        try await back.connect()
        try await backEvents.wait { if case .chat(let m) = $0, m.text == "while you were out" { m } else { nil } }
        await back.close()
        await alice.close()
        print("figure: chat across a node link (send → delivered at the other node's peer): \(String(format: "%.1f", trip.inMilliseconds)) ms")
    }

    /// Chat to a peer at a node whose link is down waits at the sending node and goes through
    /// once the link is back.
    @Test func chatWaitsForTheLink() async throws {
        let eastData = TemporaryDirectory("east")
        var east = try await MeshNodeServer(["--bind", "127.0.0.1", "--data-dir", eastData.path], bind: [])
        defer { east.stop() }
        let port = east.httpPort
        let eastAddress = "127.0.0.1:\(port)"
        let west = try await MeshNodeServer(["--bind", "127.0.0.1", "--link", east.signalingURL], bind: [])
        defer { west.stop() }
        let bobIdentity = Identity.generate()
        let bob = SignalingClient(url: east.signalingURL, name: "bob", identity: bobIdentity)
        try await bob.connect()
        let alice = client(west, "alice")
        let aliceEvents = EventLog(alice)
        try await alice.connect()
        try await alice.subscribe(["bob@\(eastAddress)"])
        // Only the link can tell west that bob is online.
        try await aliceEvents.wait { if case .presence(let p) = $0, p.status == .online { p } else { nil } }
        await bob.close()
        east.kill9()
        try await aliceEvents.wait { if case .presence(let p) = $0, p.status == .offline { p } else { nil } }
        #expect(try await alice.send(text: "across an outage", to: "bob@\(eastAddress)") == .ok)
        east = try await MeshNodeServer(["--bind", "127.0.0.1", "--data-dir", eastData.path], bind: [], httpPort: port)
        let back = SignalingClient(url: east.signalingURL, name: "bob", identity: bobIdentity)
        let backEvents = EventLog(back)
        try await back.connect()
        // West redials (every 5 s plus jitter) and hands over the stored message.
        try await backEvents.wait { if case .chat(let m) = $0, m.text == "across an outage" { m } else { nil } }
        await back.close()
        await alice.close()
    }
}
