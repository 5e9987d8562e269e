import Foundation
import Signaling
import Testing
import TestSupport

/// Issue 17: the store's writer keeps undelivered messages in a ledger in memory and applies a
/// recipient's `ack` as an update of the row it knows. `kill -9` of a real node on a real store
/// on disk, between chat being stored and its recipient's acks being applied, must lose nothing
/// the sender was told is stored, and must not deliver again what the recipient's applied ack
/// confirmed (docs/protocol.md "Delivery guarantees").
@Suite(.serialized, .timeLimit(.minutes(2))) struct ChatCrashSafetyTests {
    func client(_ node: MeshNodeServer, _ name: String, _ identity: Identity) -> SignalingClient {
        SignalingClient(url: node.signalingURL, name: name, identity: identity, pins: KeyPins(path: nil), requestTimeout: .seconds(20))
    }

    /// Texts of chat from alice that `events` holds before the marker `tag`, in order.
    func texts(_ events: EventLog, before tag: String) async -> [String] {
        await events.events.compactMap { if case .chat(let m) = $0, m.from == "alice" { m.text } else { nil } }
            .prefix { $0 != "marker \(tag)" }.map { $0 }
    }

    /// alice sends bob a marker and waits until bob's events hold it: the node sends what is
    /// pending at login before anything sent later, and the client's events keep the order, so
    /// every message delivered again would be in `events` before the marker.
    func mark(_ node: MeshNodeServer, _ aliceKey: Identity, _ events: EventLog, _ tag: String) async throws {
        let alice = client(node, "alice", aliceKey)
        try await alice.connect()
        #expect(try await alice.send(text: "marker \(tag)", to: "bob", id: "marker-\(tag)") == .ok)
        try await events.wait { if case .chat(let m) = $0, m.text == "marker \(tag)" { true } else { nil } }
        await alice.close()
    }

    @Test func killBetweenInsertAndAckLosesNothingAndRedeliversNothingAcked() async throws {
        let data = TemporaryDirectory("crash-safety")
        var node = try await MeshNodeServer(["--data-dir", data.path])
        defer { node.stop() }
        let port = node.httpPort
        let aliceKey = Identity.generate()
        let bobKey = Identity.generate()

        // Read and acknowledged: bob is online, gets each and acks it (the client does).
        let bob = client(node, "bob", bobKey)
        let bobEvents = EventLog(bob)
        try await bob.connect()
        let alice = client(node, "alice", aliceKey)
        try await alice.connect()
        for n in 0..<20 { #expect(try await alice.send(text: "read \(n)", to: "bob", id: "r\(n)") == .ok) }
        for n in 0..<20 {
            try await bobEvents.wait { if case .chat(let m) = $0, m.text == "read \(n)" { true } else { nil } }
        }
        // bob's acks went before this chat on its connection, and the node takes one write at a
        // time per connection: this chat's ack means the acks are committed.
        #expect(try await bob.send(text: "sync", to: "alice", id: "sync-1") == .ok)
        await bob.close()

        // Stored, never delivered: bob is offline.
        for n in 0..<10 { #expect(try await alice.send(text: "unread \(n)", to: "bob", id: "u\(n)") == .ok) }
        await alice.close()
        node.kill9()

        // After the restart bob gets exactly the unread ones, each once, and none it acked.
        node = try await MeshNodeServer(["--data-dir", data.path], httpPort: port)
        let back = client(node, "bob", bobKey)
        let backEvents = EventLog(back)
        try await back.connect()
        for n in 0..<10 {
            try await backEvents.wait { if case .chat(let m) = $0, m.text == "unread \(n)" { true } else { nil } }
        }
        try await mark(node, aliceKey, backEvents, "2")
        #expect(await texts(backEvents, before: "2") == (0..<10).map { "unread \($0)" })

        // bob's acks of those are committed before this chat's ack (as above).
        #expect(try await back.send(text: "sync", to: "alice", id: "sync-2") == .ok)
        await back.close()

        // Those acks were applied through the ledger read back from the file: a second kill
        // and restart deliver nothing.
        node.kill9()
        node = try await MeshNodeServer(["--data-dir", data.path], httpPort: port)
        let third = client(node, "bob", bobKey)
        let thirdEvents = EventLog(third)
        try await third.connect()
        try await mark(node, aliceKey, thirdEvents, "3")
        #expect(await texts(thirdEvents, before: "3").isEmpty)
        await third.close()
    }

    /// The same while bob acks as fast as chat arrives and the node is killed mid-stream: every
    /// message alice was told is stored reaches bob, before the kill or after the restart.
    @Test func killMidStreamLosesNothingAcknowledged() async throws {
        let data = TemporaryDirectory("crash-stream")
        var node = try await MeshNodeServer(["--data-dir", data.path])
        defer { node.stop() }
        let port = node.httpPort
        let bobKey = Identity.generate()
        let bob = client(node, "bob", bobKey)
        let bobEvents = EventLog(bob)
        try await bob.connect()
        let aliceKey = Identity.generate()
        let alice = client(node, "alice", aliceKey)
        try await alice.connect()
        var stored: [String] = []
        for n in 0..<40 {
            if try await alice.send(text: "m\(n)", to: "bob", id: "m\(n)") == .ok { stored.append("m\(n)") }
        }
        node.kill9()
        let before = await texts(bobEvents, before: "none")
        await bob.close()
        await alice.close()

        node = try await MeshNodeServer(["--data-dir", data.path], httpPort: port)
        let back = client(node, "bob", bobKey)
        let backEvents = EventLog(back)
        try await back.connect()
        try await mark(node, aliceKey, backEvents, "after")
        let after = await texts(backEvents, before: "after")
        #expect(stored.count == 40)
        #expect(Set(before + after) == Set(stored), "before the kill \(before.count), after \(after.count)")
        await back.close()
    }
}
