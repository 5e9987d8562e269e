import Foundation
import MeshNode
import Signaling
import Testing
import TestSupport

/// Issue 15, finding 2 on loopback with real `meshnode serve` processes: an anonymous client
/// linked to node B as node A's address, received chat "from alice@A" and took A's binding.
/// Now B dials A's address itself and binds it only to the key the node there proves; the
/// dialling node refuses a node at its URL that answers as another address or with another key.
@Suite(.serialized, .timeLimit(.minutes(3))) struct NodeLinkProofTests {
    @Test func aRawClientLinkingAsANodesAddressIsRefusedAndTheRealNodeLinksAfterwards() async throws {
        let b = try await MeshNodeServer(["--bind", "127.0.0.1"], bind: [])
        defer { b.stop() }
        let aPort = MeshNodeServer.nextHTTPPort()
        let aAddress = "127.0.0.1:\(aPort)"
        let bob = SignalingClient(url: b.signalingURL, name: "bob", identity: .generate(), requestTimeout: .seconds(20))
        let bobEvents = EventLog(bob)
        try await bob.connect()
        try await bob.subscribe(["alice@\(aAddress)"])

        // A is not running yet. Mallory claims its address: B dials ws://A/ws, nobody answers,
        // so her link carries mesh messages only.
        let mallory = RawSignalingSocket(url: b.signalingURL)
        let malloryKey = Identity.generate()
        let answer = try await mallory.link(as: aAddress, malloryKey, to: b.nodeAddress)
        guard case .linked(let linked) = answer.payload else { throw TestFailure("expected linked, got \(answer)") }
        #expect(linked.proven == false)
        mallory.send(SignalingMessage(id: "c1", from: "alice@\(aAddress)", to: "bob@\(b.nodeAddress)", payload: .chat(ChatBody(text: "it's me, alice"))))
        let chatRefusal = try await mallory.next { if case .error(let body) = $0.payload, body.of == "c1" { body } else { nil } }
        #expect(chatRefusal.code == .notProven)
        mallory.send(SignalingMessage(id: "p1", from: "@node", to: "@node", payload: .presence(PresenceBody(name: "alice", status: .online, key: malloryKey.publicKeyBase64))))
        let presenceRefusal = try await mallory.next { if case .error(let body) = $0.payload, body.of == "p1" { body } else { nil } }
        #expect(presenceRefusal.code == .notProven)

        // The real A starts and links to B: proven, and mallory's claim is dropped.
        let a = try await MeshNodeServer(["--bind", "127.0.0.1", "--link", b.signalingURL], bind: [], httpPort: aPort)
        defer { a.stop() }
        try await waitUntil("mallory's link to close") { await mallory.isClosed }
        let alice = SignalingClient(url: a.signalingURL, name: "alice", identity: .generate(), requestTimeout: .seconds(20))
        try await alice.connect()
        let online = try await bobEvents.wait { if case .presence(let p) = $0, p.name == "alice@\(aAddress)", p.status == .online { p } else { nil } }
        #expect(online.key == alice.identity.publicKeyBase64)
        #expect(try await alice.send(text: "hi bob", to: "bob@\(b.nodeAddress)") == .ok)
        let chat = try await bobEvents.wait { if case .chat(let m) = $0 { m } else { nil } }
        #expect(chat.text == "hi bob" && chat.from == "alice@\(aAddress)")
        // Nothing mallory sent reached bob, and no presence carried her key.
        let events = await bobEvents.events
        #expect(!events.contains { if case .chat(let m) = $0 { m.text == "it's me, alice" } else { false } })
        #expect(!events.contains { if case .presence(let p) = $0 { p.key == malloryKey.publicKeyBase64 } else { false } })

        // Now that A's address is bound to A's key, a second impostor is refused at once.
        let second = RawSignalingSocket(url: b.signalingURL)
        let refused = try await second.link(as: aAddress, .generate(), to: b.nodeAddress)
        guard case .error(let refusal) = refused.payload else { throw TestFailure("expected a refusal, got \(refused)") }
        #expect(refusal.code == .nameTaken, "\(refusal)")
        second.close()
        await alice.close()
        await bob.close()
    }

    /// The dialling side: the node at the URL must answer as the address dialled, with the key
    /// pinned for it (first use). The impostor (Tests/Interop/impostor_node.py) signs correctly
    /// but names another address, then comes back with another key.
    @Test func aDialledNodeAnsweringWithAnotherAddressOrKeyIsRefused() async throws {
        guard Subprocess.isInstalled("python3") else { return }
        let script = TestFiles.url("Tests/Interop/impostor_node.py").path
        let port = MeshNodeServer.nextHTTPPort()
        let dialled = "127.0.0.1:\(port)"
        let seed = { (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined() }

        // It answers as another address: refused, not linked.
        var impostor = try Subprocess("/usr/bin/env", ["python3", script, "\(port)", "127.0.0.1:1", seed()], name: "impostor")
        defer { impostor.stop() }
        try await impostor.waitForOutput("listening")
        let a = try await MeshNodeServer(["--bind", "127.0.0.1", "--link", "ws://\(dialled)/ws"], bind: [])
        defer { a.stop() }
        try await impostor.waitForOutput("linked-sent")
        try await a.process.waitForOutput("answered as another node")
        #expect(try await a.meshStatus().links.isEmpty)

        // It answers as the address dialled: linked, and the key is pinned.
        impostor.stop()
        impostor = try Subprocess("/usr/bin/env", ["python3", script, "\(port)", dialled, seed()], name: "impostor")
        try await impostor.waitForOutput("listening")
        try await waitUntil("the link to the address dialled", limit: .seconds(30)) { (try? await a.meshStatus().links) == [dialled] }

        // Another key at that address later: refused.
        impostor.stop()
        impostor = try Subprocess("/usr/bin/env", ["python3", script, "\(port)", dialled, seed()], name: "impostor")
        do {
            try await impostor.waitForOutput("linked-sent", timeout: .seconds(30))
        } catch {
            print("impostor:\n\(impostor.output)\nnode:\n\(a.process.output)")
            throw error
        }
        try await a.process.waitForOutput("node link refused: key changed")
        try await waitUntil("no link") { (try? await a.meshStatus().links) == [] }
    }
}
