import Foundation
import Testing
import TestSupport

/// Issue 14 item 4 with the CLI only: a room hosted by one node, members at two linked nodes.
/// bob creates `#ops` at east and writes; alice at west joins `#ops@east` and writes, which bob
/// gets live; carol at west joins later and reads both messages from the host's history.
@Suite(.timeLimit(.minutes(2))) struct RoomsAcrossNodesTests {
    @Test func aRoomOfOneNodeIsUsedFromALinkedNode() async throws {
        let nodes = try await LinkedNodes.start()
        defer { nodes.stop() }
        let (east, west, eastAddress, westAddress) = (nodes.east, nodes.west, nodes.eastAddress, nodes.westAddress)
        let home = TemporaryDirectory("rooms")
        for name in ["alice", "bob", "carol", "mallory"] {
            let keygen = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", home.path + "/\(name).id"])
            #expect(await keygen.waitForExit() == 0)
        }
        func join(_ name: String, at node: MeshNodeServer, _ extra: [String]) throws -> Subprocess {
            try Subprocess(MeshNodeServer.binary, ["join", "--node", node.signalingURL, "--name", name, "--json",
                                                   "--identity", home.path + "/\(name).id", "--known-peers", home.path + "/\(name)-pins.json"] + extra)
        }
        let room = "#ops@\(eastAddress)"
        let bob = try join("bob", at: east, ["--room", "#ops", "--send", "#ops:hello from east"])
        defer { bob.stop() }
        try await bob.waitForOutput(#""event":"sent""#)
        let alice = try join("alice", at: west, ["--room", room, "--send", "\(room):hello from west"])
        defer { alice.stop() }
        try await alice.waitForOutput(#""status":"ok""#)
        // bob (at the host) hears alice join and gets her message live, from her address at west.
        try await bob.waitForOutput(#""change":"joined","event":"room","member":"alice@\#(westAddress)""#)
        try await bob.waitForOutput(#""event":"chat","from":"alice@\#(westAddress)""#)
        #expect(bob.output.contains(##""text":"hello from west","to":"#ops""##))
        // carol comes later and reads what was said from the host's history, through west.
        let carol = try join("carol", at: west, ["--room", room, "--history", "10"])
        defer { carol.stop() }
        try await carol.waitForOutput(#""text":"hello from west""#)
        let lines = carol.output.split(separator: "\n").filter { $0.contains(#""event":"history""#) }
        #expect(lines.count == 2, "\(carol.output)")
        #expect(lines.first?.contains(#""from":"bob@\#(eastAddress)""#) == true && lines.first?.contains("hello from east") == true, "\(lines)")
        #expect(lines.last?.contains(#""from":"alice""#) == true, "alice is carol's own node's peer: written bare; \(lines)")
        // A room that does not exist at east: refused by east, through west, with east named.
        let mallory = try join("mallory", at: west, ["--room", "#nowhere@\(eastAddress)"])
        defer { mallory.stop() }
        try await mallory.waitForOutput(#""code":"forbidden""#)
        #expect(mallory.output.contains("node \(eastAddress)"), "\(mallory.output)")
    }
}
