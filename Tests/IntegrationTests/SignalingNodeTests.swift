import Foundation
import ICE
import Signaling
import Testing
import TestSupport

/// Signaling against a real `meshnode serve` over real WebSockets on loopback (issue 3).
@Suite(.serialized, .timeLimit(.minutes(2))) struct SignalingNodeTests {
    func client(_ node: MeshNodeServer, _ name: String, _ identity: Identity = .generate(), pins: KeyPins = KeyPins(path: nil)) -> SignalingClient {
        SignalingClient(url: node.signalingURL, name: name, identity: identity, pins: pins, requestTimeout: .seconds(20))
    }

    @Test func loginPresenceChatAndCallSetup() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        let alice = client(node, "alice")
        let aliceEvents = EventLog(alice)
        var start = ContinuousClock.now
        let welcome = try await alice.connect()
        let loginTime = ContinuousClock.now - start
        #expect(welcome.name == "alice")
        try await alice.subscribe(["bob"])
        try await aliceEvents.wait { if case .presence(let p) = $0, p.name == "bob", p.status == .offline { p } else { nil } }

        let bobIdentity = Identity.generate()
        let bob = client(node, "bob", bobIdentity)
        let bobEvents = EventLog(bob)
        try await bob.connect()
        let online = try await aliceEvents.wait { if case .presence(let p) = $0, p.name == "bob", p.status == .online { p } else { nil } }
        #expect(online.key == bobIdentity.publicKeyBase64)

        // Chat round trip: alice sends, bob's client reports it.
        var trips: [Double] = []
        for index in 0..<20 {
            start = ContinuousClock.now
            #expect(try await alice.send(text: "hello \(index)", to: "bob", id: "m\(index)") == .ok)
            let text = "hello \(index)"
            _ = try await bobEvents.wait { if case .chat(let m) = $0, m.text == text { m } else { nil } }
            trips.append((ContinuousClock.now - start).inMilliseconds)
        }
        #expect(try await alice.send(text: "hello 0", to: "bob", id: "m0") == .duplicate)

        // Call setup: signed call, bob accepts, SDP and a candidate both ways.
        let callID = try await alice.call("bob", kind: .video)
        let ring = try await bobEvents.wait { if case .callSetup(let p) = $0, p.type == .call { p } else { nil } }
        #expect(ring.call == callID && ring.kind == .video && ring.from == "alice")
        try await bob.callSetup(.accept, to: "alice", call: callID)
        _ = try await aliceEvents.wait { if case .callSetup(let p) = $0, p.type == .accept, p.call == callID { p } else { nil } }
        try await alice.callSetup(.sdp, to: "bob", call: callID, sdpType: "offer", sdp: "v=0\r\na=fingerprint:sha-256 AB:CD\r\n")
        let offer = try await bobEvents.wait { if case .callSetup(let p) = $0, p.type == .sdp { p } else { nil } }
        #expect(offer.sdp?.contains("AB:CD") == true)
        try await bob.callSetup(.candidate, to: "alice", call: callID, candidate: CandidateInfo(candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", sdpMid: "0"))
        _ = try await aliceEvents.wait { if case .callSetup(let p) = $0, p.type == .candidate { p } else { nil } }
        try await alice.callSetup(.hangup, to: "bob", call: callID)
        _ = try await bobEvents.wait { if case .callSetup(let p) = $0, p.type == .hangup { p } else { nil } }

        await bob.close()
        try await aliceEvents.wait { if case .presence(let p) = $0, p.name == "bob", p.status == .offline { p } else { nil } }
        await alice.close()
        let sorted = trips.sorted()
        print("figure: login \(String(format: "%.1f", loginTime.inMilliseconds)) ms; chat round trip (send → ack → delivered) median \(String(format: "%.2f", sorted[sorted.count / 2])) ms, max \(String(format: "%.2f", sorted.last!)) ms")
    }

    @Test func anotherKeyCannotTakeANameAndPinsRefuseAChangedKey() async throws {
        let data = TemporaryDirectory("data")
        var node = try await MeshNodeServer(["--data-dir", data.path])
        defer { node.stop() }
        let port = node.httpPort
        let bob = client(node, "bob")
        try await bob.connect()
        do {
            try await client(node, "bob").connect()
            Issue.record("a second key logged in as bob")
        } catch let error as SignalingError {
            #expect(error.code == .nameTaken)
        }
        let pinsDirectory = TemporaryDirectory("pins")
        let pinsFile = pinsDirectory.path + "/known_peers.json"
        let alice = client(node, "alice", pins: KeyPins(path: pinsFile))
        let events = EventLog(alice)
        try await alice.connect()
        try await alice.subscribe(["bob"])
        _ = try await events.wait { if case .presence(let p) = $0, p.status == .online { p } else { nil } }
        await alice.close()
        await bob.close()

        // The same address now answers with a node that forgot everything: "bob" is someone else.
        node.kill9()
        let otherData = TemporaryDirectory("other")
        node = try await MeshNodeServer(["--data-dir", otherData.path], httpPort: port)
        let impostor = client(node, "bob")
        try await impostor.connect()
        let again = client(node, "alice", pins: KeyPins(path: pinsFile))
        let laterEvents = EventLog(again)
        try await again.connect()
        try await again.subscribe(["bob"])
        let refused = try await laterEvents.wait { if case .error(let e) = $0 { e } else { nil } }
        #expect(refused.code == .keyChanged)
        #expect(await laterEvents.events.contains { if case .presence(let p) = $0 { p.name == "bob" } else { false } } == false)
        await again.close()
        await impostor.close()
    }

    /// Nothing is lost across `kill -9` of the node: acknowledged chat is delivered after the restart.
    @Test func offlineMessagesSurviveKill9() async throws {
        let data = TemporaryDirectory("data")
        var node = try await MeshNodeServer(["--data-dir", data.path])
        defer { node.stop() }
        let port = node.httpPort
        let bobIdentity = Identity.generate()
        let bob = client(node, "bob", bobIdentity)
        try await bob.connect()
        // Only members list a room's members (issue 15): bob joins too.
        try await bob.join(room: "#ops")
        await bob.close()
        let alice = client(node, "alice")
        try await alice.connect()
        try await alice.join(room: "#ops")
        for index in 0..<5 { #expect(try await alice.send(text: "stored \(index)", to: "bob", id: "s\(index)") == .ok) }
        await alice.close()

        node.kill9()
        node = try await MeshNodeServer(["--data-dir", data.path], httpPort: port)
        let back = client(node, "bob", bobIdentity)
        let events = EventLog(back)
        try await back.connect()
        for index in 0..<5 {
            let text = "stored \(index)"
            _ = try await events.wait { if case .chat(let m) = $0, m.text == text, m.from == "alice" { m } else { nil } }
        }
        // The node remembers ids and rooms too.
        let aliceAgain = client(node, "alice")
        do {
            try await aliceAgain.connect()
            Issue.record("a new key took alice after the restart")
        } catch {}
        #expect(try await back.members(of: "#ops").map(\.name) == ["alice", "bob"])
        await back.close()
    }

    /// docs/protocol.md "Liveness": the client reconnects (every 5 s, with jitter) and resumes; a
    /// message sent while the node was down is delivered once it is back.
    @Test func clientReconnectsAfterTheNodeRestarts() async throws {
        let data = TemporaryDirectory("data")
        var node = try await MeshNodeServer(["--data-dir", data.path])
        defer { node.stop() }
        let port = node.httpPort
        let alice = client(node, "alice")
        let aliceEvents = EventLog(alice)
        try await alice.connect()
        let bob = client(node, "bob")
        let bobEvents = EventLog(bob)
        try await bob.connect()
        try await alice.subscribe(["bob"])

        let killed = ContinuousClock.now
        node.kill9()
        try await aliceEvents.wait { if case .disconnected = $0 { true } else { nil } }
        let mark = await aliceEvents.count
        // Sent during the outage: acknowledged after the reconnect.
        let pending = Task { try await alice.send(text: "while down", to: "bob", id: "down-1") }
        node = try await MeshNodeServer(["--data-dir", data.path], httpPort: port)
        try await aliceEvents.wait(after: mark) { if case .reconnected = $0 { true } else { nil } }
        let reconnect = ContinuousClock.now - killed
        #expect(try await pending.value == .ok)
        _ = try await bobEvents.wait { if case .chat(let m) = $0, m.text == "while down" { m } else { nil } }
        // Subscriptions were renewed: bob's presence comes again.
        _ = try await aliceEvents.wait(after: mark) { if case .presence(let p) = $0, p.name == "bob", p.status == .online { p } else { nil } }
        print("figure: reconnect after kill -9 and restart of the node: \(String(format: "%.0f", reconnect.inMilliseconds)) ms")
        await alice.close()
        await bob.close()
    }

    /// A client that stops talking is dropped and announced offline; one that pings stays. (That
    /// it goes within two intervals is HubTests' part, on a clock the test moves.) The 3 s
    /// heartbeat leaves the pinging client 1.5 s of slack on a busy machine.
    @Test func deadConnectionsAreDroppedAndAnnouncedOffline() async throws {
        let node = try await MeshNodeServer(["--heartbeat", "3"])
        defer { node.stop() }
        let watcher = client(node, "watcher")
        let events = EventLog(watcher)
        try await watcher.connect()
        try await watcher.subscribe(["mute"])
        let mute = RawSignalingSocket(url: node.signalingURL)
        try await mute.login("mute", .generate())
        _ = try await events.wait { if case .presence(let p) = $0, p.name == "mute", p.status == .online { p } else { nil } }
        let silentSince = ContinuousClock.now
        let mark = await events.count
        _ = try await events.wait(after: mark) { if case .presence(let p) = $0, p.name == "mute", p.status == .offline { p } else { nil } }
        let dropped = ContinuousClock.now - silentSince
        print("figure: silent connection dropped after \(String(format: "%.0f", dropped.inMilliseconds)) ms (heartbeat 3000 ms)")
        try await waitUntil("the mute connection to close") { await mute.isClosed }
        // The watcher pings and stays.
        #expect(await watcher.isOnline)
        await watcher.close()
    }

    /// Malformed, oversized, unauthorised and forged frames over a real socket; the node stays up.
    @Test func badInputGetsErrorsOverTheWire() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        let bob = client(node, "bob")
        let bobEvents = EventLog(bob)
        try await bob.connect()
        let raw = RawSignalingSocket(url: node.signalingURL)
        let identity = Identity.generate()
        guard case .challenge(let challenge) = try await raw.next().payload else { throw TestFailure("no challenge") }
        raw.send(text: #"{"type":"chat","id":"1","to":"bob","body":{"text":"x"}}"#)
        #expect(try await errorCode(raw, "before login") == .notLoggedIn)
        _ = try await raw.login("mallory", identity, nonce: challenge.nonce)
        raw.send(text: "]]]")
        #expect(try await errorCode(raw, "bad json") == .badJSON)
        raw.send(text: String(repeating: "x", count: 100_000))
        #expect(try await errorCode(raw, "too large") == .tooLarge)
        raw.send(SignalingMessage(id: "f", from: "bob", to: "alice", payload: .ping))
        #expect(try await errorCode(raw, "forbidden") == .forbidden)
        var forged = CallSigning.sign(CallPayload(type: .call, from: "mallory", to: "bob", call: "c", kind: .audio, ts: Date().timeIntervalSince1970), with: identity)
        forged.payload = forged.payload.replacingOccurrences(of: "audio", with: "video")
        raw.send(SignalingMessage(id: "t", from: "mallory", to: "bob", payload: .callSetup(.call, forged)))
        #expect(try await errorCode(raw, "forged") == .badSignature)
        raw.send(text: #"{"type":"teleport","id":"u","body":{}}"#)
        #expect(try await errorCode(raw, "unknown type") == .unknownType)
        raw.send(SignalingMessage(id: "p", from: "mallory", to: "@node", payload: .ping))
        #expect(try await raw.next().payload == .pong)
        // A flood: the node answers every frame, the burst (200, less the frames above) with a
        // pong and what exceeds the budget (50 a second on top) with rateLimited, and stays up.
        let flood = ContinuousClock.now
        for index in 0..<400 { raw.send(SignalingMessage(id: "f\(index)", from: "", to: "@node", payload: .ping)) }
        var limited = 0
        var pongs = 0
        for _ in 0..<400 {
            let message = try await raw.next()
            if case .pong = message.payload { pongs += 1 }
            if case .error(let body) = message.payload, body.code == .rateLimited { limited += 1 }
        }
        let budget = 200 + Int(50 * (ContinuousClock.now - flood).inMilliseconds / 1000) + 1
        #expect(pongs + limited == 400)
        #expect(pongs >= 190 && pongs <= budget, "\(pongs) pongs, \(limited) refused; budget \(budget)")
        // bob saw none of it and is still served.
        #expect(try await bob.send(text: "still here", to: "bob") == .ok)
        #expect(await bobEvents.events.contains { if case .callSetup = $0 { true } else { false } } == false)
        raw.close()
        await bob.close()
    }

    private func errorCode(_ socket: RawSignalingSocket, _ step: String) async throws -> SignalingError.Code {
        guard let message = try? await socket.next() else { throw TestFailure("\(step): no answer") }
        guard case .error(let body) = message.payload else { throw TestFailure("expected an error, got \(message)") }
        return body.code
    }

    /// Item 6: the TURN REST credentials from the welcome allocate on the node's own TURN server,
    /// even though no --turn-secret was configured.
    @Test func iceServersCarryCredentialsOurTURNServerAccepts() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        let alice = client(node, "alice")
        let welcome = try await alice.connect()
        await alice.close()
        let urls = welcome.iceServers.flatMap(\.urls)
        #expect(urls.contains("stun:127.0.0.1:\(node.udpPort)"))
        #expect(urls.contains("turn:127.0.0.1:\(node.udpPort)?transport=udp"))
        #expect(urls.contains("turn:127.0.0.1:\(node.udpPort)?transport=tcp"))
        let turn = try #require(welcome.iceServers.first { $0.username != nil })
        let username = try #require(turn.username)
        #expect(username.hasSuffix(":alice"))
        let turnClient = try TURNTestClient(port: node.udpPort, username: username, password: try #require(turn.credential))
        let allocation = try turnClient.allocate()
        #expect(allocation.isSuccess, "allocate failed with \(allocation.code ?? 0)")
        let wrong = try TURNTestClient(port: node.udpPort, username: username, password: "wrong")
        #expect(try wrong.allocate().code == 401)
    }
}

/// The client side of liveness: a node that stops answering (SIGSTOP: the socket stays open) is
/// given up after two heartbeat intervals, and the client is back once the node answers again.
@Suite(.timeLimit(.minutes(1))) struct SignalingClientLivenessTests {
    @Test func clientNoticesASilentNodeAndComesBack() async throws {
        let node = try await MeshNodeServer(["--heartbeat", "1"])
        defer { node.stop() }
        let alice = SignalingClient(url: node.signalingURL, name: "alice", identity: .generate(), reconnectDelay: .seconds(1))
        let events = EventLog(alice)
        try await alice.connect()
        let pid = node.process.pid
        kill(pid, SIGSTOP)
        defer { kill(pid, SIGCONT) }
        let stopped = ContinuousClock.now
        let reason = try await events.wait { if case .disconnected(let reason) = $0 { reason } else { nil } }
        let noticed = ContinuousClock.now - stopped
        kill(pid, SIGCONT)
        #expect(reason.contains("two heartbeat intervals"))
        try await events.wait { if case .reconnected = $0 { true } else { nil } }
        print("figure: client noticed a silent node after \(String(format: "%.0f", noticed.inMilliseconds)) ms (heartbeat 1000 ms)")
        await alice.close()
    }
}
