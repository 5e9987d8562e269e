import Foundation
import Testing
import TestSupport
@testable import Signaling

/// Issue 17: routed chat on the connection's event loop (SignalingHub+FastChat.swift) — the
/// envelope scanned once (``ChatEnvelope``), the node's frames appended as bytes
/// (``ChatFrames``), no turn of the hub's actor. It must answer exactly as the hub does, and
/// leave to the hub everything it is not sure about.
@Suite struct ChatFastPathTests {
    /// Frames the scanner takes; for each it must give what the full decoder gives.
    static let taken = [
        #"{"type":"chat","id":"t1","from":"","to":"b0x1","body":{"text":"1733430000123"}}"#,
        #"{"type":"chat","id":"t1","body":{"text":"no from, no to"}}"#,
        #"  { "body" : { "text" : "spaced" } , "to" : "bob" , "id" : "m-1" , "type" : "chat" }  "#,
        #"{"type":"chat","id":"e","to":"bob","body":{"text":"q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude00 \u0000 end"}}"#,
        #"{"type":"chat","id":"u","to":"bob","body":{"text":"héllo ✓ 😀 / <b>"}}"#,
        ##"{"type":"chat","id":"r","to":"#ops","body":{"text":"to a room"}}"##,
        #"{"type":"chat","id":"\u0041","from":"alice","to":"bob@10.0.0.2:8080","body":{"text":""}}"#,
        #"{"type":"ack","id":"a1","from":"","to":"@node","body":{"of":"t1","sender":"b0x0"}}"#,
        #"{"type":"ack","id":"a2","body":{"of":"t1","status":"duplicate","sender":"alice"}}"#,
        #"{"type":"ack","id":"a3","body":{"of":"t1"}}"#,
        #"{"type":"ping","id":"p","from":"","to":"@node","body":{}}"#,
        #"{"type":"ping","id":"p9","from":"alice","body":{ }}"#,
        "{\"type\":\"chat\",\"id\":\"\(String(repeating: "i", count: 64))\",\"to\":\"bob\",\"body\":{\"text\":\"64-byte id\"}}",
    ]

    /// Frames the scanner leaves to the full decoder (which refuses some, takes others).
    static let left = [
        #"{"type":"ping","id":"p","to":"@node"}"#,
        #"{"type":"ping","id":"p","to":"@node","body":{"text":"x"}}"#,
        #"{"type":"pong","id":"p","to":"@node","body":{}}"#,
        #"{"type":"chat","id":"t","to":"bob","body":{"text":"x","sent":1}}"#,
        #"{"type":"chat","id":"t","to":"bob","extra":"x","body":{"text":"x"}}"#,
        #"{"type":"chat","id":"t","id":"u","to":"bob","body":{"text":"x"}}"#,
        #"{"type":"chat","id":"t","to":"bob","body":{"text":"x","text":"y"}}"#,
        #"{"type":"chat","id":"t","from":null,"to":"bob","body":{"text":"x"}}"#,
        #"{"type":"chat","id":7,"to":"bob","body":{"text":"x"}}"#,
        #"{"type":"chat","id":"t","to":"bob","body":{"text":"\ud800 lone"}}"#,
        #"{"type":"chat","id":"t","to":"bob","body":{"text":"\udc00 lone"}}"#,
        "{\"type\":\"chat\",\"id\":\"t\",\"to\":\"bob\",\"body\":{\"text\":\"raw\ttab\"}}",
        #"{"type":"chat","id":"t","to":"bob","body":{"text":"x"}} trailing"#,
        #"{"type":"chat","id":"t","to":"bob","body":{"text":"x"}"#,
        #"{"type":"chat","id":"","to":"bob","body":{"text":"x"}}"#,
        "{\"type\":\"chat\",\"id\":\"\(String(repeating: "i", count: 65))\",\"to\":\"bob\",\"body\":{\"text\":\"x\"}}",
        #"{"type":"chat","id":"t","to":"bob"}"#,
        #"{"type":"chat","id":"t","to":"bob","body":{}}"#,
        #"{"type":"ack","id":"a","body":{"of":"t","status":"maybe"}}"#,
        #"{"type":"ack","id":"a","body":{"sender":"alice"}}"#,
        #"{"id":"t","to":"bob","body":{"text":"x"}}"#,
        #"{"type":"chat","id":"t","to":"bob","body":{"text":"bad \x escape"}}"#,
        #"{"type":"chat","id":"t","to":"bob","body":{"text":"short \u12"}}"#,
        #"["chat"]"#,
        "",
        "{\"type\":\"chat\",\"id\":\"t\",\"to\":\"bob\",\"body\":{\"text\":\"\(String(repeating: "x", count: SignalingProtocol.maxFrameBytes))\"}}",
    ]

    @Test func theScannerGivesWhatTheCodecGives() throws {
        for frame in Self.taken {
            let envelope = try #require(ChatEnvelope.scan(frame), "not taken: \(frame)")
            #expect(envelope.message == (try SignalingCodec.decode(frame)), "\(frame)")
        }
    }

    @Test func theScannerLeavesEverythingElseToTheCodec() {
        for frame in Self.left {
            #expect(ChatEnvelope.scan(frame) == nil, "taken: \(frame.prefix(120))")
        }
    }

    /// `fuzz-signaling`'s promise, checked in every test run: frames near the accepted shape
    /// (each a valid frame with one to three bytes replaced, inserted or removed, from the
    /// bytes JSON gives meaning to) are either left to the codec or read exactly as the codec
    /// reads them. A fixed seed: the same 20,000 frames every run.
    @Test func theScannerAgreesWithTheCodecOnMutatedFrames() {
        var random = SplitMix64(seed: 17)
        let alphabet = Array(#"{}[]:,"\/ Abfnrt0123456789aefdDn"#.utf8) + [0x0A, 0x09, 0x00, 0xC3, 0xA9, 0x7F]
        var taken = 0
        for round in 0..<20_000 {
            var bytes = Array(Self.taken[round % Self.taken.count].utf8)
            for _ in 0...Int(random.next() % 3) where !bytes.isEmpty {
                let at = Int(random.next() % UInt64(bytes.count))
                let byte = alphabet[Int(random.next() % UInt64(alphabet.count))]
                switch random.next() % 3 {
                case 0: bytes[at] = byte
                case 1: bytes.insert(byte, at: at)
                default: bytes.remove(at: at)
                }
            }
            let frame = String(decoding: bytes, as: UTF8.self)
            guard let envelope = ChatEnvelope.scan(frame) else { continue }
            taken += 1
            #expect(envelope.message == (try? SignalingCodec.decode(frame)), "\(frame)")
        }
        #expect(taken > 1_000, "the mutations should leave many frames the scanner takes")
    }

    @Test func theNodesFramesDecodeAsTheCodecsOwn() throws {
        let text = "q\" b\\ s/ \u{8}\u{c}\n\r\t \u{1} \u{1f} é ✓ 😀 \u{0}"
        let delivery = ChatFrames.delivery(id: "m\"1", from: "alice", to: "bob", text: text, sent: 1_733_430_000.125)
        let expected = SignalingMessage(id: "m\"1", from: "alice", to: "bob", payload: .chat(ChatBody(text: text, sent: 1_733_430_000.125)))
        #expect(try SignalingCodec.decode(delivery) == expected)
        #expect(try SignalingCodec.decode(SignalingCodec.encode(expected)) == expected)
        for status in [AckStatus.ok, .duplicate] {
            let ack = ChatFrames.ack(of: "m\\1", status: status, to: "alice", id: "n-x-1")
            #expect(try SignalingCodec.decode(ack)
                    == SignalingMessage(id: "n-x-1", from: SignalingProtocol.nodeAddress, to: "alice", payload: .ack(AckBody(of: "m\\1", status: status))))
        }
        let pong = SignalingMessage(id: "p\"9", from: SignalingProtocol.nodeAddress, to: "alice", payload: .pong)
        #expect(ChatFrames.pong(id: "p\"9", to: "alice") == SignalingCodec.encode(pong), "the codec's own bytes")
        #expect(try SignalingCodec.decode(ChatFrames.pong(id: "p\"9", to: "alice")) == pong)
    }

    /// Hands `text` to the fast path of `peer`'s connection; true when it took it (and its
    /// write was answered).
    private func fast(_ text: String, _ peer: TestPeer) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let handle = peer.handle
            if !peer.hub.receiveFast(text, on: handle, answered: { reply in
                if let reply { handle.send(text: reply) }
                continuation.resume(returning: true)
            }) {
                continuation.resume(returning: false)
            }
        }
    }

    @Test func theFastPathTakesOnlyWhatItCanAnswerAsTheHubDoes() async throws {
        let node = try await HubFixture(node: "127.0.0.1:8080")
        let stranger = await node.peer()
        let alice = try await node.login("alice", .generate())
        _ = try await node.login("bob", .generate())
        let chat = { (to: String, from: String, text: String) in
            SignalingCodec.encode(SignalingMessage(id: UUID().uuidString, from: from, to: to, payload: .chat(ChatBody(text: text))))
        }
        #expect(await !fast(chat("bob", "", "before login"), stranger))
        #expect(await fast(chat("bob", "", "hi"), alice))
        #expect(await fast(chat("bob", "alice", "hi"), alice))
        #expect(await fast(chat("bob@127.0.0.1:8080", "", "this node's own address"), alice))
        for (to, from, text) in [("#ops", "", "a room"), ("nobody", "", "never logged in here"), ("carol@10.0.0.9:8080", "", "another node"),
                                 ("bob", "mallory", "someone else's name"), ("bob", "", String(repeating: "x", count: 16 * 1024 + 1)),
                                 ("not a name!", "", "bad address")] {
            #expect(await !fast(chat(to, from, text), alice), "\(to) \(from)")
        }
        #expect(await !fast(#"{"type":"ack","id":"a","body":{"of":"x"}}"#, alice), "an ack without a sender: the hub refuses it")
        #expect(await !fast(#"{"type":"ping","id":"p","body":{}}"#, stranger), "before login: the hub answers")
        #expect(await fast(#"{"type":"ping","id":"p","body":{}}"#, alice))
        #expect(await !fast(#"{"type":"ping","id":"p","from":"mallory","body":{}}"#, alice), "someone else's name: the hub refuses it")
        // A session the hub dropped chats no more, although its channel may still send.
        await node.hub.closed(alice.handle.id)
        #expect(await !fast(chat("bob", "", "after the drop"), alice))
        await node.close()
    }

    /// Both ways into the hub answer a chat, its resend and the recipient's ack alike, and the
    /// ack removes the message from the store.
    @Test(arguments: [true, false])
    func bothPathsAnswerAlike(fastPath: Bool) async throws {
        let node = try await HubFixture()
        let alice = try await node.login("alice", .generate(), fastPath: fastPath)
        let bob = try await node.login("bob", .generate(), fastPath: fastPath)
        let text = "line one\nline \"two\" 😀"
        await alice.send(.chat(ChatBody(text: text)), to: "bob", id: "m1")
        let ack = try await alice.next()
        #expect(ack.from == SignalingProtocol.nodeAddress && ack.to == "alice" && ack.payload == .ack(AckBody(of: "m1", status: .ok)))
        let delivered = try await bob.next()
        guard case .chat(let body) = delivered.payload else { throw TestFailure("not chat: \(delivered)") }
        #expect(delivered.id == "m1" && delivered.from == "alice" && delivered.to == "bob" && body.text == text)
        #expect(abs((body.sent ?? 0) - Date().timeIntervalSince1970) < 60)
        #expect(try await node.store.pending(for: "bob").map(\.id) == ["m1"])
        await alice.send(.chat(ChatBody(text: text)), to: "bob", id: "m1")
        #expect(try await alice.ack() == AckBody(of: "m1", status: .duplicate))
        await bob.send(.ack(AckBody(of: "m1", sender: "alice")), from: "bob")
        #expect(try await node.store.pending(for: "bob").isEmpty)
        // Nothing else was sent: the next frames are the answers to these pings.
        await alice.send(.ping, id: "after-a")
        try await alice.expectNext(id: "after-a", "the pong, nothing before it")
        await bob.send(.ping, id: "after-b")
        try await bob.expectNext(id: "after-b", "the pong, not the resend")
        await node.close()
    }

    /// docs/protocol.md "Limits": one budget per connection, whichever way its frames take —
    /// chats on the fast path and pings on the hub's path draw on the same bucket. The hub's
    /// clock stands still, so the counts are exact.
    @Test func theRateLimitCountsBothPaths() async throws {
        let clock = ManualClock()
        let node = try await HubFixture(rate: 10, burst: 20, clock: clock)
        let alice = try await node.login("alice", .generate())  // one frame of the burst
        _ = try await node.login("bob", .generate())
        var answered = 0, limited = 0
        for index in 0..<30 {
            await alice.send(.chat(ChatBody(text: "c\(index)")), to: "bob", id: "c\(index)")
            await alice.send(.ping, id: "p\(index)")
        }
        for _ in 0..<60 {
            let message = try await alice.next()
            switch message.payload {
            case .ack, .pong: answered += 1
            case .error(let body) where body.code == .rateLimited: limited += 1
            default: throw TestFailure("unexpected \(message)")
            }
        }
        #expect(answered == 19 && limited == 41)
        await node.close()
    }
}

