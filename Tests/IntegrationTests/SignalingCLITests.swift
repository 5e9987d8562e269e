import Foundation
import Testing

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
            #expect(await keygen.waitForExit(timeout: 10) == 0)
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
        let again = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", bobIdentity])
        #expect(await again.waitForExit(timeout: 10) != 0, "keygen overwrote an identity")

        let url = "http://127.0.0.1:\(node.httpPort)"
        let pins = ["--known-peers", home.path + "/pins.json"]
        let join = try Subprocess(MeshNodeServer.binary, ["join", "--node", url, "--name", "bob", "--identity", bobIdentity, "--json",
                                                          "--subscribe", "alice"] + pins)
        try await join.waitForOutput(#""event":"connected""#)
        let chat = try Subprocess(MeshNodeServer.binary, ["chat", "--node", url, "--name", "alice", "--identity", aliceIdentity] + pins + ["bob", "hello from the CLI"])
        #expect(await chat.waitForExit(timeout: 15) == 0, "\(chat.output)")
        try await join.waitForOutput(#""event":"chat","from":"alice","id":"#, timeout: 10)
        #expect(join.output.contains(#""text":"hello from the CLI""#))
        #expect(join.output.contains(#""event":"presence","name":"alice","status":"online""#))

        // The name is alice's key's now: another key is refused, with a non-zero exit.
        let stranger = home.path + "/stranger.id"
        _ = await (try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", stranger])).waitForExit(timeout: 10)
        let impostor = try Subprocess(MeshNodeServer.binary, ["chat", "--node", url, "--name", "alice", "--identity", stranger] + pins + ["bob", "x"])
        #expect(await impostor.waitForExit(timeout: 15) == 1)
        #expect(impostor.output.contains("name-taken"))
        join.stop()
    }
}
