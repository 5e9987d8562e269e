import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import Signaling
import Testing
import TestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Issue 15, findings 6, 7 and 9 against a real `meshnode serve`: each attack played by a raw
/// client or a hostile server of the test's own, then the legitimate use next to it.
@Suite(.serialized, .timeLimit(.minutes(4))) struct NodeTrustTests {
    // MARK: - Finding 6: a login relayed by another node

    /// Mallory runs a node M that relays node N's challenge to the clients that dial M and
    /// replays their logins to N. alice's real client, dialling M, signs for M's address: N
    /// refuses it with `bad-signature`, and alice dialling N logs in as usual.
    @Test func aLoginRelayedThroughAnotherNodeIsRefused() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        let relay = try await RelayNode(target: node.signalingURL)
        defer { relay.stop() }
        let alice = Identity.generate()
        let victim = SignalingClient(url: relay.url, name: "alice", identity: alice, requestTimeout: .seconds(20))
        let refused = await #expect(throws: SignalingError.self) { try await victim.connect() }
        #expect(refused?.code == .badSignature, "\(String(describing: refused))")
        #expect(await relay.relayedLogins >= 1, "the relay never saw a login to replay")

        let direct = SignalingClient(url: node.signalingURL, name: "alice", identity: alice, requestTimeout: .seconds(20))
        let welcome = try await direct.connect()
        #expect(welcome.name == "alice")
        await direct.close()
    }

    // MARK: - Finding 4: disk fill

    /// The review's probe against the real node, with its bounds set by flags: 100 free names
    /// join a room and send 1 KB each, five rounds, within the rate limit. The store files stay
    /// a few MB (unbounded: about 55 MB), the senders past the bound get `store-full`, and a
    /// member who was away gets every stored message afterwards.
    @Test func aHundredFreeNamesCannotFillTheDisk() async throws {
        let data = TemporaryDirectory("data")
        let node = try await MeshNodeServer(["--data-dir", data.path, "--room-max-bytes", "\(1 << 20)", "--store-max-bytes", "\(2 << 20)"])
        defer { node.stop() }
        let carolKey = Identity.generate()
        let carol = SignalingClient(url: node.signalingURL, name: "carol", identity: carolKey, requestTimeout: .seconds(20))
        try await carol.connect()
        try await carol.join(room: "#flood")
        await carol.close()

        var sockets: [RawSignalingSocket] = []
        defer { for socket in sockets { socket.close() } }
        for index in 0..<100 {
            let socket = RawSignalingSocket(url: node.signalingURL)
            try await socket.login("free\(index)", .generate())
            socket.send(SignalingMessage(id: "join", from: "", to: "@node", payload: .join(RoomBody(room: "#flood"))))
            sockets.append(socket)
        }
        let text = String(repeating: "x", count: 1000)
        var stored = 0
        var full = 0
        for round in 0..<5 {
            for (index, socket) in sockets.enumerated() {
                let id = "m\(round)-\(index)"
                socket.send(SignalingMessage(id: id, from: "", to: "#flood", payload: .chat(ChatBody(text: text))))
                let answer = try await waitFor("the answer to \(id)") { () -> String? in
                    while let frame = await socket.received.pop() {
                        guard frame.contains("\"of\":\"\(id)\"") else { continue }
                        return frame.contains("\"type\":\"ack\"") ? "ok" : (frame.contains("store-full") ? "full" : frame)
                    }
                    return nil
                }
                if answer == "ok" { stored += 1 } else if answer == "full" { full += 1 } else { Issue.record("unexpected answer \(answer)") }
            }
        }
        let onDisk = ["signaling.sqlite", "signaling.sqlite-wal"].compactMap {
            (try? FileManager.default.attributesOfItem(atPath: data.path + "/" + $0)[.size] as? NSNumber)?.intValue
        }.reduce(0, +)
        print("figure: 500 room messages of 1 KB from 100 free names: \(stored) stored, \(full) refused store-full, store files \(onDisk / 1024) KiB")
        #expect(stored >= 5 && full > 400 && stored + full == 500)
        #expect(onDisk < 12 << 20, "store files \(onDisk) bytes")

        let back = SignalingClient(url: node.signalingURL, name: "carol", identity: carolKey, requestTimeout: .seconds(20))
        let events = EventLog(back)
        try await back.connect()
        try await waitUntil("carol's \(stored) messages") {
            await events.events.filter { if case .chat(let message) = $0 { message.text == text } else { false } }.count == stored
        }
        await back.close()
    }

    // MARK: - Finding 7: subscriptions churned for a minute

    /// The review's probe: one client subscribes and unsubscribes unique names as fast as the
    /// rate limit lets it. The node's memory stays within 10% of where it stood after a short
    /// warm-up (the allocator's first growth) instead of growing with every name ever seen.
    @Test(.timeLimit(.minutes(3))) func churningSubscriptionsForAMinuteDoesNotGrowTheNode() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        let churner = RawSignalingSocket(url: node.signalingURL)
        defer { churner.close() }
        try await churner.login("churner", .generate())
        var round = 0
        // Two frames a round, at most 20 rounds a second: within 50 frames/s.
        func churn(for duration: Duration) async throws {
            let end = ContinuousClock.now + duration
            while ContinuousClock.now < end {
                let started = ContinuousClock.now
                let names = (0..<1000).map { "c\(round)-\($0)" }
                churner.send(SignalingMessage(id: "s\(round)", from: "", to: "@node", payload: .subscribe(NamesBody(names: names))))
                churner.send(SignalingMessage(id: "u\(round)", from: "", to: "@node", payload: .unsubscribe(NamesBody(names: names))))
                let mark = "u\(round)"
                try await waitUntil("the ack of \(mark)", interval: .milliseconds(1)) {
                    // Drain the 1000 presence frames and the acks as they come.
                    while let text = await churner.received.pop() {
                        if text.contains("\"of\":\"\(mark)\"") { return true }
                        if text.contains("\"type\":\"error\"") { throw TestFailure("the node refused the churn: \(text)") }
                    }
                    return false
                }
                round += 1
                let pause = started + .milliseconds(50) - ContinuousClock.now
                if pause > .zero { try await Task.sleep(for: pause) }
            }
        }
        try await churn(for: .seconds(5))
        let baseline = try residentKiB(of: node.process.pid)
        try await churn(for: .seconds(60))
        // A second for the last frames to drain.
        try await Task.sleep(for: .seconds(1))
        let after = try residentKiB(of: node.process.pid)
        print("figure: subscription churn, \(round * 1000) unique names in 65 s: node RSS \(baseline / 1024) MiB after warm-up, \(after / 1024) MiB at the end")
        #expect(Double(after) <= Double(baseline) * 1.10, "RSS grew from \(baseline) KiB to \(after) KiB")
        #expect(round >= 100, "only \(round) rounds: the churn did not run")
        // The node still answers, and presence still works.
        churner.send(SignalingMessage(id: "last", from: "", to: "@node", payload: .subscribe(NamesBody(names: ["churner"]))))
        try await waitUntil("presence of churner") {
            while let text = await churner.received.pop() { if text.contains("\"status\":\"online\"") { return true } }
            return false
        }
    }

    func residentKiB(of pid: pid_t) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(whereSeparator: \.isWhitespace)[1]) else {
            throw TestFailure("no VmRSS in /proc/\(pid)/status")
        }
        return kib
    }

    // MARK: - Finding 9: Origin, headers, status routes

    /// A page of another site in a visitor's browser opens the node's WebSocket: closed at once
    /// (1008). The page's own origin, and clients that send no Origin (the CLI), go on.
    @Test func aForeignOriginCannotOpenTheWebSocket() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        let foreign = RawSignalingSocket(url: node.signalingURL, origin: "https://evil.example")
        try await waitUntil("the foreign page's socket to close") { await foreign.isClosed }
        #expect(await foreign.received.pop() == nil, "the foreign page got a frame")

        let own = RawSignalingSocket(url: node.signalingURL, origin: "http://127.0.0.1:\(node.httpPort)")
        try await own.login("page", .generate())
        let cli = RawSignalingSocket(url: node.signalingURL)
        try await cli.login("cli", .generate())
        own.close()
        cli.close()

        // An origin on the allow-list works too.
        let open = try await MeshNodeServer(["--allow-origin", "https://app.example"])
        defer { open.stop() }
        let allowed = RawSignalingSocket(url: open.signalingURL, origin: "https://app.example")
        try await allowed.login("app", .generate())
        allowed.close()
    }

    @Test func everyResponseCarriesTheSecurityHeaders() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        for path in ["/", "/app.js", "/status", "/health"] {
            let (_, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(node.httpPort)\(path)")!)
            let http = try #require(response as? HTTPURLResponse)
            #expect(http.statusCode == 200, "\(path)")
            let csp = http.value(forHTTPHeaderField: "Content-Security-Policy") ?? ""
            #expect(csp.contains("frame-ancestors 'none'"), "\(path): \(csp)")
            #expect(http.value(forHTTPHeaderField: "X-Content-Type-Options") == "nosniff", "\(path)")
            #expect(http.value(forHTTPHeaderField: "Referrer-Policy") == "no-referrer", "\(path)")
            if path == "/" { #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe")) }
        }
    }

    /// `status-access off` hides the routes; the default shows them on this host, where the
    /// tests and `meshnode status` read them.
    @Test func statusRoutesFollowStatusAccess() async throws {
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        #expect(try await node.meshStatus().node.hasSuffix(":\(node.httpPort)"))
        // The same request through a reverse proxy on this host (it names its client): refused.
        var proxied = URLRequest(url: URL(string: "http://127.0.0.1:\(node.httpPort)/metrics")!)
        proxied.setValue("203.0.113.9", forHTTPHeaderField: "X-Forwarded-For")
        let (_, refused) = try await URLSession.shared.data(for: proxied)
        #expect((refused as? HTTPURLResponse)?.statusCode == 403)
        let closed = try await MeshNodeServer(["--status-access", "off"])
        defer { closed.stop() }
        for path in ["/status", "/metrics", "/mesh"] {
            let (_, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(closed.httpPort)\(path)")!)
            #expect((response as? HTTPURLResponse)?.statusCode == 404, "\(path)")
        }
        let (_, health) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(closed.httpPort)/health")!)
        #expect((health as? HTTPURLResponse)?.statusCode == 200)
    }
}

/// A hostile node: a WebSocket server that relays every frame between each client that dials
/// it and the node at `target` (the relay of finding 6).
final class RelayNode: Sendable {
    let url: String
    private let task: Task<Void, Never>
    private let logins = LoginCounter()

    actor LoginCounter {
        var count = 0
        func add() { count += 1 }
    }

    var relayedLogins: Int { get async { await logins.count } }

    init(target: String) async throws {
        let port = MeshNodeServer.nextHTTPPort()
        url = "ws://127.0.0.1:\(port)/ws"
        let logins = logins
        let app = Application(
            router: Router(),
            server: .http1WebSocketUpgrade { _, _, _ in
                .upgrade([.secWebSocketProtocol: SignalingProtocol.subprotocol]) { inbound, outbound, _ in
                    let upstream = RawSignalingSocket(url: target)
                    defer { upstream.close() }
                    await withTaskGroup(of: Void.self) { group in
                        group.addTask {
                            // Node N → the client: N's challenge, its answers.
                            while !Task.isCancelled {
                                if let text = await upstream.received.pop() {
                                    do { try await outbound.write(.text(text)) } catch { return }
                                } else if await upstream.received.closed {
                                    return
                                } else {
                                    try? await Task.sleep(for: .milliseconds(2))
                                }
                            }
                        }
                        group.addTask {
                            // The client → node N: its login, replayed as it is.
                            do {
                                for try await message in inbound.messages(maxSize: 1 << 20) {
                                    guard case .text(let text) = message else { continue }
                                    if text.contains("\"type\":\"login\"") { await logins.add() }
                                    upstream.send(text: text)
                                }
                            } catch {}
                        }
                        await group.next()
                        group.cancelAll()
                    }
                }
            },
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            logger: Logger(label: "relay")
        )
        task = Task { try? await app.runService() }
        // Listening once a TCP connection is accepted.
        try await waitUntil("the relay to listen") {
            let socket = RawSignalingSocket(url: "ws://127.0.0.1:\(port)/ws")
            defer { socket.close() }
            try await Task.sleep(for: .milliseconds(50))
            return await !socket.isClosed
        }
    }

    func stop() { task.cancel() }
}
