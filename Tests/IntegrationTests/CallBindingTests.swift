import Foundation
import MeshNode
import Signaling
import Synchronization
import Testing
import TestSupport

/// The CLI peer binds a call to its other party by address and key (issue 15, finding 1): real
/// `Peer`s (the code behind `meshnode call` and `join`) in a real call through a real node,
/// and mallory — a third logged-in user with her own key, signing correct payloads — playing
/// the hijack.
@Suite(.serialized, .timeLimit(.minutes(3))) struct CallBindingTests {
    static let options = CallOptions(videoSource: nil, audioSource: .tone(frequency: 440), localAddresses: ["127.0.0.1"])

    func peer(_ node: MeshNodeServer, _ name: String, accept: Peer.AcceptPolicy) -> Peer {
        let client = SignalingClient(url: node.signalingURL, name: name, identity: .generate(), requestTimeout: .seconds(20))
        return Peer(client: client, options: Self.options, acceptPolicy: accept)
    }

    @Test("mallory's signed offer and hangup for alice's call with bob are refused by bob: no answer goes to her, the call stays up, alice's own hangup ends it")
    func thirdPartyCannotHijackACall() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let bob = peer(node, "bob", accept: .auto)
        let bobEvents = PeerEventLog(bob)
        try await bob.connect()
        let alice = peer(node, "alice", accept: .never)
        try await alice.connect()
        let mallory = SignalingClient(url: node.signalingURL, name: "mallory", identity: .generate(), requestTimeout: .seconds(20))
        let malloryEvents = EventLog(mallory)
        try await mallory.connect()

        let call = try await alice.call("bob", kind: .audio)
        try await waitUntil("alice's call to connect", interval: .milliseconds(50)) { await call.state == .connected }
        let bobsCall = try await bobEvents.wait { if case .callStarted(let call) = $0 { call } else { nil } }
        try await waitUntil("bob's side to connect", interval: .milliseconds(50)) { await bobsCall.state == .connected }

        // Mallory's offer carries her own fingerprint and ICE credentials, as in the review.
        let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
            + "a=ice-ufrag:mall\r\na=ice-pwd:mallorymallorymallorymal\r\na=fingerprint:sha-256 \(Array(repeating: "EE", count: 32).joined(separator: ":"))\r\n"
            + "a=setup:actpass\r\na=mid:0\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
        try await mallory.callSetup(.sdp, to: "bob", call: call.id, sdpType: "offer", sdp: offer)
        try await mallory.callSetup(.hangup, to: "bob", call: call.id, reason: "mallory")
        // A message for a call id bob does not have does nothing either.
        try await mallory.callSetup(.hangup, to: "bob", call: "no-such-call")
        for (type, id) in [(CallSetupType.sdp, call.id), (.hangup, call.id), (.hangup, "no-such-call")] {
            try await bobEvents.wait { if case .refused(let p, _) = $0, p.type == type, p.call == id, p.from == "mallory" { p } else { nil } }
        }
        #expect(await bobsCall.state == .connected)
        #expect(await call.state == .connected)
        #expect(bobsCall.remote == "alice")
        // Bob answered nothing to mallory.
        #expect(await malloryEvents.events.contains { if case .callSetup = $0 { true } else { false } } == false)

        await call.hangup()
        try await waitUntil("bob's side to end", interval: .milliseconds(50)) { await bobsCall.state == .ended }
        // Alice's signed hangup or her DTLS close_notify, whichever arrives first.
        let reason = await bobsCall.endReason
        #expect(reason == "alice hung up" || reason == "alice closed the session", "bob's call ended: \(reason ?? "-")")
        await mallory.close()
        await alice.close()
        await bob.close()
    }

    @Test("a lookalike: for bob's call with alice@west, a local `alice` at bob's node (another key) is another party — her offer and hangup are refused")
    func localLookalikeIsAnotherParty() async throws {
        let east = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { east.stop() }
        let west = try await MeshNodeServer(["--link", east.signalingURL], bind: ["127.0.0.1"])
        defer { west.stop() }
        try await waitUntil("west's link to east", interval: .milliseconds(100)) {
            (try? await west.meshStatus().links.contains("127.0.0.1:\(east.httpPort)")) == true
        }
        let bob = peer(east, "bob", accept: .auto)
        let bobEvents = PeerEventLog(bob)
        try await bob.connect()
        let alice = peer(west, "alice", accept: .never)
        try await alice.connect()
        let call = try await alice.call("bob@127.0.0.1:\(east.httpPort)", kind: .audio)
        let bobsCall = try await bobEvents.wait { if case .callStarted(let call) = $0 { call } else { nil } }
        #expect(bobsCall.remote == "alice@127.0.0.1:\(west.httpPort)")
        try await waitUntil("bob's side to connect", interval: .milliseconds(50)) { await bobsCall.state == .connected }

        let lookalike = SignalingClient(url: east.signalingURL, name: "alice", identity: .generate(), requestTimeout: .seconds(20))
        try await lookalike.connect()
        try await lookalike.callSetup(.sdp, to: "bob", call: call.id, sdpType: "offer", sdp: "v=0\r\na=fingerprint:sha-256 EE:EE\r\n")
        try await lookalike.callSetup(.hangup, to: "bob", call: call.id)
        for type in [CallSetupType.sdp, .hangup] {
            try await bobEvents.wait { if case .refused(let p, _) = $0, p.type == type, p.from == "alice" { p } else { nil } }
        }
        #expect(await bobsCall.state == .connected)
        #expect(await call.state == .connected)
        await lookalike.close()
        await alice.close()
        await bob.close()
    }

    @Test("calls waiting for an answer (policy ask) are bounded — the 9th is answered busy — and only their caller can cancel one")
    func ringingCallsAreBoundedAndBound() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let bob = peer(node, "bob", accept: .ask)
        let bobEvents = PeerEventLog(bob)
        try await bob.connect()
        func client(_ name: String) async throws -> (SignalingClient, EventLog) {
            let client = SignalingClient(url: node.signalingURL, name: name, identity: .generate(), requestTimeout: .seconds(20))
            let events = EventLog(client)
            try await client.connect()
            return (client, events)
        }
        let (mallory, _) = try await client("mallory")
        for index in 0..<Peer.maxRinging {
            try await mallory.call("bob", kind: .audio, ring: 120, call: "r\(index)")
        }
        try await bobEvents.wait { if case .incomingCall(let p) = $0, p.call == "r\(Peer.maxRinging - 1)" { p } else { nil } }
        let (eve, eveEvents) = try await client("eve")
        try await eve.call("bob", kind: .audio, call: "one-more")
        let answer = try await eveEvents.wait { if case .callSetup(let p) = $0, p.call == "one-more" { p } else { nil } }
        #expect(answer.type == .busy)
        // Eve cannot cancel mallory's ringing call; mallory can.
        try await eve.callSetup(.cancel, to: "bob", call: "r0")
        try await bobEvents.wait { if case .refused(let p, _) = $0, p.type == .cancel, p.from == "eve" { p } else { nil } }
        try await mallory.callSetup(.cancel, to: "bob", call: "r1")
        // A marker behind mallory's cancel: the node relayed the cancel first, and bob takes
        // events in order.
        try await eve.callSetup(.hangup, to: "bob", call: "marker")
        try await bobEvents.wait { if case .refused(let p, _) = $0, p.call == "marker" { p } else { nil } }
        #expect(try await bob.accept("r1") == nil, "mallory's cancel did not end her ringing call")
        let accepted = try #require(try await bob.accept("r0"), "eve's cancel removed mallory's ringing call")
        #expect(accepted.remote == "mallory")
        await mallory.close()
        await eve.close()
        await bob.close()
    }
}

/// Collects a peer's events so that a test can wait for the one it expects.
actor PeerEventLog {
    private(set) var events: [PeerEvent] = []

    init(_ peer: Peer) {
        let stream = peer.events
        Task { await self.read(stream) }
    }

    private func read(_ stream: AsyncStream<PeerEvent>) async {
        for await event in stream { events.append(event) }
    }

    @discardableResult
    func wait<T: Sendable>(timeout: Duration = TestDeadline.event, _ match: @Sendable (PeerEvent) -> T?) async throws -> T {
        try await waitFor("a matching peer event", limit: timeout, interval: .milliseconds(2)) {
            events.lazy.compactMap(match).first
        }
    }
}
