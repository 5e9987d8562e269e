import Foundation
import Testing
@testable import Signaling

/// docs/protocol.md "Envelope": every message type round-trips, and every malformed frame is
/// refused with the protocol's error code instead of a crash.
@Suite struct CodecTests {
    static let signed = SignedBody(payload: "{}", key: "a2V5", sig: "c2ln")
    static let samples: [SignalingPayload] = [
        .challenge(ChallengeBody(nonce: "bm9uY2U=")),
        .login(LoginBody(name: "alice", key: "a2V5", node: "127.0.0.1:8080", sig: "c2ln")),
        .welcome(WelcomeBody(name: "alice", key: "a2V5", heartbeat: 15, iceServers: [
            ICEServer(urls: ["stun:127.0.0.1:3478"]),
            ICEServer(urls: ["turn:127.0.0.1:3478?transport=udp"], username: "1:alice", credential: "pw"),
        ])),
        .ping, .pong,
        .subscribe(NamesBody(names: ["bob"])), .unsubscribe(NamesBody(names: ["bob"])),
        .presence(PresenceBody(name: "bob", status: .online, key: "a2V5")),
        .join(RoomBody(room: "#ops")), .join(RoomBody(room: "#ops", rule: .invite)), .leave(RoomBody(room: "#ops")),
        .invite(InviteBody(room: "#ops", name: "bob")),
        .members(MembersBody(room: "#ops", members: [RoomMember(name: "bob", online: true, key: nil)], of: "1")),
        .room(RoomEventBody(room: "#ops", member: "bob", event: .joined)),
        .chat(ChatBody(text: "héllo \"world\" / ✓", sent: 1.5)),
        .chat(ChatBody(text: "in a room", sent: 2, seq: 41, room: "#ops")),
        .history(HistoryBody(room: "#ops", before: 42, limit: 10)),
        .history(HistoryBody(room: "#ops", messages: [HistoryEntry(seq: 41, from: "bob@192.0.2.2:8080", id: "m1", text: "hi", sent: 2)], more: true, of: "h1")),
        .ack(AckBody(of: "m1", status: .duplicate)),
        .error(ErrorBody(code: .badJSON, reason: "no", of: "m1")),
        .timeout(TimeoutBody(call: "c1")),
        .link(LinkBody(node: "192.0.2.1:8080", key: "a2V5", sig: "c2ln", nonce: "bm9uY2U=")),
        .linked(LinkedBody(node: "192.0.2.2:8080", key: "a2V5", sig: "c2ln", heartbeat: 15)),
        .mesh(MeshBody(records: [SignedNodeRecord(payload: "{\"node\":\"192.0.2.2:8080\"}", sig: "c2ln")])),
        .dialback(DialbackBody(udp: ["192.0.2.2:3478"], tcp: ["192.0.2.2:3478"])),
        .dialbackResult(DialbackResultBody(of: "d1", results: [DialbackOutcome(transport: "udp", address: "192.0.2.2:3478", ok: false, reason: "no answer")], observed: "192.0.2.2")),
        .prove(ProveBody(nonce: "bm9uY2U=", node: "192.0.2.2:8080")),
        .proof(ProofBody(node: "192.0.2.2:8080", key: "a2V5", sig: "c2ln")),
        .device(.code(DeviceCodeBody(code: "123456", expires: 300, of: "c1"))),
        .device(.claim(DeviceClaimBody(name: "alice", code: "123456", key: "a2V5"))),
        .device(.request(DeviceRequestBody(name: "alice", key: "a2V5", claim: "c2"))),
        .device(.endorse(EndorseBody(key: "a2V5", sig: "c2ln"))),
        .device(.added(DeviceAddedBody(name: "alice", key: "a2V5", owner: "b3duZXI=", endorsement: "c2ln", of: "c2"))),
        .device(.devices(DevicesBody(devices: [DeviceEntry(key: "a2V5", owner: true, added: 0, online: true)], of: "l1"))),
        .device(.revoke(RevokeBody(key: "a2V5"))),
        .device(.answeredElsewhere(AnsweredElsewhereBody(call: "c1", answer: "accept"))),
        .roomCall(.request(SignedBody(payload: "{\"action\":\"join\"}", key: "k", sig: "s"))),
        .roomCall(.state(RoomCallStateBody(room: "#ops", call: "rc-1", kind: .audio, event: .started, member: "alice",
                                           participants: [SignedBody(payload: "{}", key: "k", sig: "s")], ring: 30, limit: 4))),
    ] + CallSetupType.allCases.map { .callSetup($0, signed) }

    @Test func everyTypeRoundTrips() throws {
        #expect(Set(Self.samples.map(\.type)) == Set(MessageType.allCases))
        for payload in Self.samples {
            let message = SignalingMessage(id: "id-1", from: "alice", to: "bob", payload: payload)
            let text = SignalingCodec.encode(message)
            #expect(try SignalingCodec.decode(text) == message, "\(text)")
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            #expect(object?["type"] as? String == payload.type.rawValue)
            #expect(Set(object?.keys.map { $0 } ?? []) == ["type", "id", "from", "to", "body"])
        }
    }

    @Test func decodesAHandWrittenFrame() throws {
        let message = try SignalingCodec.decode(##"{"type":"chat","id":"42","from":"alice","to":"#ops","body":{"text":"hi"}}"##)
        #expect(message == SignalingMessage(id: "42", from: "alice", to: "#ops", payload: .chat(ChatBody(text: "hi"))))
    }

    @Test func missingFromAndToAreEmpty() throws {
        let message = try SignalingCodec.decode(#"{"type":"ping","id":"p","body":{}}"#)
        #expect(message.from == "" && message.to == "" && message.payload == .ping)
    }

    @Test(arguments: [
        ("", SignalingError.Code.badJSON),
        ("not json", .badJSON),
        ("[1,2]", .badJSON),
        (#"{"type":"chat"}"#, .badJSON),
        (#"{"type":"chat","id":7,"body":{}}"#, .badJSON),
        (#"{"type":"chat","id":"","body":{"text":"x"}}"#, .badField),
        (#"{"type":"chat","id":"\#(String(repeating: "x", count: 65))","body":{"text":"x"}}"#, .badField),
        (#"{"id":"1","body":{}}"#, .badField),
        (#"{"type":"teleport","id":"1","body":{}}"#, .unknownType),
        (#"{"type":"chat","id":"1","body":{}}"#, .badField),
        (#"{"type":"chat","id":"1","body":{"text":5}}"#, .badField),
        (#"{"type":"chat","id":"1"}"#, .badField),
        (#"{"type":"presence","id":"1","body":{"name":"a","status":"away"}}"#, .badField),
        (#"{"type":"call","id":"1","body":{"payload":"{}","key":"k"}}"#, .badField),
    ])
    func malformedFramesAreRefused(frame: String, code: SignalingError.Code) {
        #expect(throws: SignalingError.self) { try SignalingCodec.decode(frame) }
        do {
            _ = try SignalingCodec.decode(frame)
        } catch {
            #expect(error.code == code, "\(frame): \(error)")
        }
    }

    @Test func errorsNameTheMessageTheyAnswer() {
        do {
            _ = try SignalingCodec.decode(#"{"type":"teleport","id":"abc","body":{}}"#)
            Issue.record("decoded an unknown type")
        } catch {
            #expect(error.of == "abc")
        }
    }

    @Test func oversizedFramesAreRefusedBeforeParsing() {
        let text = #"{"type":"chat","id":"1","body":{"text":""# + String(repeating: "a", count: SignalingProtocol.maxFrameBytes) + #""}}"#
        do {
            _ = try SignalingCodec.decode(text)
            Issue.record("decoded an oversized frame")
        } catch {
            #expect(error.code == .tooLarge)
        }
    }

    /// A cheap stand-in for the fuzz target: random mutations of valid frames never crash.
    @Test func randomMutationsNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        let seeds = Self.samples.map { SignalingCodec.encode(SignalingMessage(id: "1", from: "a", to: "b", payload: $0)) }
        var decoded = 0
        for round in 0..<3000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[index] = UInt8.random(in: 0...255, using: &generator)
                case 1: bytes.remove(at: index)
                default: bytes.insert(UInt8.random(in: 32...126, using: &generator), at: index)
                }
                if bytes.isEmpty { bytes = [0x7b] }
            }
            if (try? SignalingCodec.decode(Data(bytes))) != nil { decoded += 1 }
        }
        #expect(decoded < 3000)
    }

    @Test func remoteAddresses() {
        #expect(Address.parse("alice")! == ("alice", nil))
        #expect(Address.parse("alice@127.0.0.1:8080")! == ("alice", "127.0.0.1:8080"))
        #expect(Address.parse("alice@[::1]:8080")! == ("alice", "[::1]:8080"))
        #expect(Address.parse("alice@host") == nil)
        #expect(Address.parse("alice@host:0") == nil)
        #expect(Address.parse("@host:1") == nil)
        #expect(Address.parse("a b@host:1") == nil)
        #expect(Address.bareName("alice@127.0.0.1:8080") == "alice")
    }

    @Test func namesAndRooms() {
        #expect(Address.isValidName("alice"))
        #expect(Address.isValidName("Bob_2.x-y"))
        #expect(!Address.isValidName(""))
        #expect(!Address.isValidName("-bob"))
        #expect(!Address.isValidName("bob@host"))
        #expect(!Address.isValidName("#ops"))
        #expect(!Address.isValidName(String(repeating: "a", count: 33)))
        #expect(Address.isValidRoom("#ops"))
        #expect(!Address.isValidRoom("ops"))
        #expect(!Address.isValidRoom("#"))
    }
}
