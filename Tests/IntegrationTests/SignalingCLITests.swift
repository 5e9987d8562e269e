import Foundation
import Testing
import TestSupport

/// `meshnode keygen`, `meshnode join --json` and `meshnode chat` as a user runs them.
@Suite(.timeLimit(.minutes(1))) struct SignalingCLITests {
    @Test func keygenJoinAndChat() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        let home = TemporaryDirectory("cli")
        let bobIdentity = home.path + "/bob.id"
        let aliceIdentity = home.path + "/alice.id"
        for path in [bobIdentity, aliceIdentity] {
            let keygen = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", path])
            #expect(await keygen.waitForExit() == 0)
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
        let again = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", bobIdentity])
        #expect(await again.waitForExit() != 0, "keygen overwrote an identity")

        let url = "http://127.0.0.1:\(node.httpPort)"
        let pins = ["--known-peers", home.path + "/pins.json"]
        let join = try Subprocess(MeshNodeServer.binary, ["join", "--node", url, "--name", "bob", "--identity", bobIdentity, "--json",
                                                          "--subscribe", "alice"] + pins)
        try await join.waitForOutput(#""event":"connected""#)
        let chat = try Subprocess(MeshNodeServer.binary, ["chat", "--node", url, "--name", "alice", "--identity", aliceIdentity] + pins + ["bob", "hello from the CLI"])
        #expect(await chat.waitForExit() == 0, "\(chat.output)")
        try await join.waitForOutput(#""event":"chat","from":"alice","id":"#)
        #expect(join.output.contains(#""text":"hello from the CLI""#))
        #expect(join.output.contains(#""event":"presence","name":"alice","status":"online""#))

        // The name is alice's key's now: another key is refused, with a non-zero exit.
        let stranger = home.path + "/stranger.id"
        _ = await (try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", stranger])).waitForExit()
        let impostor = try Subprocess(MeshNodeServer.binary, ["chat", "--node", url, "--name", "alice", "--identity", stranger] + pins + ["bob", "x"])
        #expect(await impostor.waitForExit() == 1)
        #expect(impostor.output.contains("name-taken"))
        join.stop()
    }
}

/// Issue 3's "Done when", with the CLI only: two `meshnode join` peers on two linked nodes see
/// each other come online, chat, and exchange a call request and its acceptance.
@Suite(.timeLimit(.minutes(2))) struct LinkedJoinTests {
    @Test func twoJoinPeersOnLinkedNodes() async throws {
        let east = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { east.stop() }
        let west = try await MeshNodeServer(["--link", east.signalingURL], bind: ["127.0.0.1"])
        defer { west.stop() }
        let home = TemporaryDirectory("linked")
        let eastAddress = "127.0.0.1:\(east.httpPort)"
        let westAddress = "127.0.0.1:\(west.httpPort)"
        // The nodes are linked (and the link proven both ways) before the peers start: alice's
        // `--send` to bob@east is refused while west has never reached east.
        try await waitUntil("west links to east", interval: .milliseconds(100)) {
            (try? await west.meshStatus().links.contains(eastAddress)) == true
        }
        for name in ["alice", "bob"] {
            let keygen = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", home.path + "/\(name).id"])
            #expect(await keygen.waitForExit() == 0)
        }
        func options(_ name: String) -> [String] {
            ["--identity", home.path + "/\(name).id", "--known-peers", home.path + "/\(name)-pins.json", "--json"]
        }
        let bob = try Subprocess(MeshNodeServer.binary, ["join", "--node", east.signalingURL, "--name", "bob",
                                                         "--subscribe", "alice@\(westAddress)", "--accept", "auto"] + options("bob"))
        defer { bob.stop() }
        try await bob.waitForOutput(#""event":"connected""#)
        let alice = try Subprocess(MeshNodeServer.binary, ["join", "--node", west.signalingURL, "--name", "alice",
                                                           "--subscribe", "bob@\(eastAddress)",
                                                           "--send", "bob@\(eastAddress):hello east",
                                                           "--call", "bob@\(eastAddress):video"] + options("alice"))
        defer { alice.stop() }
        try await alice.waitForOutput(#""event":"presence","name":"bob@\#(eastAddress)","status":"online""#)
        try await bob.waitForOutput(#""event":"presence","name":"alice@\#(westAddress)","status":"online""#)
        try await bob.waitForOutput(#""text":"hello east""#)
        try await bob.waitForOutput(#""answer":"accept""#)
        try await alice.waitForOutput(#""type":"accept""#)
        #expect(bob.output.contains(#""kind":"video""#))
    }
}
