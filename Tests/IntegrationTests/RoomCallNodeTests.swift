import Foundation
import Signaling
import Testing
import TestSupport

/// Room calls against a real `meshnode serve` over real WebSockets (issue 16, step 1): members
/// are rung, join and leave; a non-member is refused; `--room-call-mesh-limit` bounds the call;
/// each client checks the participant list itself.
@Suite(.serialized, .timeLimit(.minutes(2))) struct RoomCallNodeTests {
    func client(_ node: MeshNodeServer, _ name: String) -> SignalingClient {
        SignalingClient(url: node.signalingURL, name: name, identity: .generate(), requestTimeout: .seconds(20))
    }

    func code(_ work: () async throws -> Void) async -> String {
        do {
            try await work()
            return "ok"
        } catch let error as SignalingError {
            return error.code.rawValue
        } catch {
            return "\(error)"
        }
    }

    @Test func membersAreRungJoinAndTheLastOutEndsTheCall() async throws {
        let node = try await MeshNodeServer(["--room-call-mesh-limit", "3"])
        defer { node.stop() }
        let names = ["alice", "bob", "carol", "erin", "dave"]
        let clients = names.map { client(node, $0) }
        let logs = clients.map(EventLog.init)
        for client in clients { try await client.connect() }
        let (alice, bob, carol, erin, dave) = (clients[0], clients[1], clients[2], clients[3], clients[4])
        for member in [alice, bob, carol, erin] { try await member.join(room: "#family") }

        try await alice.roomCall(.start, room: "#family", call: "rc-sunday", kind: .video)
        for log in logs[1...3] {
            let rung = try await log.wait { if case .roomCall(let state) = $0, state.event == .started { state } else { nil } }
            #expect(rung.call == "rc-sunday" && rung.ring == 30 && rung.limit == 3 && rung.participants.map(\.name) == ["alice"] && rung.refused == 0)
        }
        // dave is not in #family: he may not join, and heard no ring.
        #expect(await code { try await dave.roomCall(.join, room: "#family", call: "rc-sunday") } == "not-member")
        #expect(await logs[4].events.contains { if case .roomCall = $0 { true } else { false } } == false)

        try await bob.roomCall(.join, room: "#family", call: "rc-sunday")
        try await carol.roomCall(.join, room: "#family", call: "rc-sunday")
        let three = try await logs[0].wait { if case .roomCall(let state) = $0, state.event == .joined, state.member == "carol" { state } else { nil } }
        #expect(three.participants.map(\.name) == ["alice", "bob", "carol"])
        // The node was started with --room-call-mesh-limit 3.
        #expect(await code { try await erin.roomCall(.join, room: "#family", call: "rc-sunday") } == "store-full")

        for (index, member) in [alice, bob, carol].enumerated() {
            try await member.roomCall(.leave, room: "#family", call: "rc-sunday")
            let expected: RoomCallEvent = index == 2 ? .ended : .left
            let name = names[index]
            let seen = try await logs[3].wait { if case .roomCall(let state) = $0, state.event == expected, state.member == name { state } else { nil } }
            #expect(seen.participants.count == 2 - index)
        }
        for client in clients { await client.close() }
    }
}
