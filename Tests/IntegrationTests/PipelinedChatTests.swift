import Foundation
import Signaling
import Testing
import TestSupport

/// Issue 17: a connection's chats and acks on the fast path do not wait for each other's
/// commit (SignalingConnectionHandler, `PipelinedWrites`), yet what a client sees keeps the
/// order of what it sent: acks in the order of the chats, a frame the hub answers (a ping)
/// after the answers to every chat before it, deliveries in order. Against a real node.
@Suite(.timeLimit(.minutes(2))) struct PipelinedChatTests {
    @Test("chats sent back to back are acked in order, and a ping after them is answered after them")
    func answersKeepTheFramesOrder() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let alice = RawSignalingSocket(url: node.signalingURL)
        let bob = RawSignalingSocket(url: node.signalingURL)
        try await alice.login("alice", .generate())
        try await bob.login("bob", .generate())
        var expected: [String] = []
        var chats: [String] = []
        for round in 0..<4 {
            for index in 0..<8 {
                let id = "c\(round)-\(index)"
                alice.send(SignalingMessage(id: id, from: "", to: "bob", payload: .chat(ChatBody(text: "text \(id)"))))
                expected.append("ack \(id)")
                chats.append(id)
            }
            alice.send(SignalingMessage(id: "p\(round)", from: "", to: "@node", payload: .ping))
            expected.append("pong p\(round)")
        }
        var answers: [String] = []
        for _ in expected {
            let message = try await alice.next()
            switch message.payload {
            case .ack(let body): answers.append("ack \(body.of)")
            case .pong: answers.append("pong \(message.id)")
            default: answers.append("\(message)")
            }
        }
        #expect(answers == expected)

        // The recipient gets them in order; its acks, pipelined too, come before its ping's pong
        // (the hub handles the ping only after the store answered those acks).
        var delivered: [String] = []
        for _ in chats {
            let message = try await bob.next()
            guard case .chat = message.payload else { throw TestFailure("not a chat: \(message)") }
            delivered.append(message.id)
            bob.send(SignalingMessage(id: "a-\(message.id)", from: "", to: "@node", payload: .ack(AckBody(of: message.id, sender: "alice"))))
        }
        #expect(delivered == chats)
        bob.send(SignalingMessage(id: "after-acks", from: "", to: "@node", payload: .ping))
        let pong = try await bob.next()
        #expect(pong.id == "after-acks" && pong.payload == .pong, "only the pong: a successful ack is not answered")
        alice.close()
        bob.close()
    }
}
