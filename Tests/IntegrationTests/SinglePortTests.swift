import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Signaling
import Synchronization
import Testing
import TestSupport

/// `single-port` (issue 13, item 3): HTTPS, WSS and TURN over TLS on the one web port, told apart
/// by the first bytes inside TLS (a STUN message, RFC 8489 §6, or an HTTP request line). A real
/// TURN client (coturn's `turnutils_uclient -S`) relays through the port while the page, a WSS
/// login and a certificate reload (SIGHUP) happen on it, and then over plain TCP (STUN only); garbage and silence are closed within
/// the bound; the TURN caps hold a connection until it shows it is HTTP.
@Suite(.serialized, .timeLimit(.minutes(2)), .enabled(if: Tools.coturnClients, "coturn's tools are installed by .ci/run"))
struct SinglePortTests {
    func trusting(_ ca: TestCertificateAuthority) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(ca.caFile)
        return configuration
    }

    func ping(_ socket: RawSignalingSocket) async throws -> Bool {
        socket.send(SignalingMessage(id: "p", from: "", to: SignalingProtocol.nodeAddress, payload: .ping))
        if case .pong = try await socket.next().payload { return true }
        return false
    }

    /// A series of the node's `/metrics` over HTTPS (its own certificate is not checked here),
    /// asked from 127.0.0.2: a source of its own, so that it takes none of 127.0.0.1's places.
    func metric(_ node: MeshNodeServer, _ series: String) async throws -> Double? {
        let (_, output) = try await Subprocess.run("/usr/bin/curl", ["-sSk", "--max-time", "5", "--interface", "127.0.0.2",
                                                                     "https://127.0.0.1:\(node.httpPort)/metrics"])
        return output.split(separator: "\n").lazy.compactMap { line -> Double? in
            guard line.hasPrefix(series + " ") else { return nil }
            return Double(line.dropFirst(series.count + 1).split(separator: " ").first ?? "")
        }.first
    }

    @Test("turnutils_uclient -S relays through the web port while the page, a WSS login and a SIGHUP reload run on it")
    func turnAndWebOnOnePort() async throws {
        let ca = try await TestCertificateAuthority()
        let first = try await ca.issue("first")
        let second = try await ca.issue("second")
        // The node reads the files at these paths; the test overwrites them as certbot would.
        let (certificate, key) = try ca.live(first)
        let node = try await MeshNodeServer(["--https", "--single-port", "--tls-cert", certificate, "--tls-key", key,
                                             "--user", "alice:wonderland", "--allow-peer", "127.0.0.0/8"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let port = node.httpPort
        let turns = "turns:127.0.0.1:\(port)?transport=tcp"
        #expect(node.process.output.contains("stun/turn: \(turns)"), "\(node.process.output)")

        // A WSS login on the port; its welcome offers TURN over TLS on this same port.
        let alice = RawSignalingSocket(url: "wss://127.0.0.1:\(port)/ws", tlsConfiguration: trusting(ca), serverName: "localhost")
        defer { alice.close() }
        let welcome = try await alice.login("alice", .generate())
        #expect(welcome.iceServers.flatMap(\.urls).contains(turns), "\(welcome.iceServers)")

        // coturn's client allocates over TLS on the web port and relays 2 × 400 messages (about
        // 4 s) to an echo peer, while the certificate is swapped under it.
        let (peer, peerPort) = try await CoturnTools.startPeer(address: "127.0.0.1")
        defer { peer.stop() }
        async let relayed = CoturnTools.uclient(["-t", "-S", "-p", "\(port)", "-u", "alice", "-w", "wonderland",
                                                 "-e", "127.0.0.1", "-r", "\(peerPort)", "-n", "400", "-m", "2", "-l", "180", "-z", "10",
                                                 "127.0.0.1"])
        // The page over HTTPS meanwhile, verified against the test CA.
        let page = try await Subprocess.run("/usr/bin/curl", ["-sS", "--max-time", "10", "--cacert", ca.caFile, "https://127.0.0.1:\(port)/"])
        #expect(page.status == 0)
        #expect(page.output.contains("<title>meshnode</title>"))
        try await waitUntil("the relay carries data", interval: .milliseconds(100)) {
            (try await metric(node, "meshnode_turn_allocations_active") ?? 0) >= 1
        }
        // A certbot renewal: new files, SIGHUP.
        try ca.renew((certificate, key), with: second)
        node.process.terminate(SIGHUP)
        let secondFingerprint = try await TestCertificateAuthority.fingerprint(ofPEM: second.certificate)
        try await waitUntil("the port presents the new certificate", interval: .milliseconds(50)) {
            try await TestCertificateAuthority.presentedFingerprint(port: port) == secondFingerprint
        }
        // The WebSocket from before is still answered; a new login gets the new certificate.
        #expect(try await ping(alice))
        let bob = RawSignalingSocket(url: "wss://127.0.0.1:\(port)/ws", tlsConfiguration: trusting(ca), serverName: "localhost")
        defer { bob.close() }
        #expect(try await bob.login("bob", .generate()).name == "bob")

        // The relayed flow went on through the reload: nothing lost.
        let report = try await relayed
        #expect(report.sent >= 800, "sent \(report.sent)")
        #expect(report.received == report.sent, "received \(report.received) of \(report.sent)")
        #expect(report.lost == 0)

        // TURN over plain TCP on the same port, as libnice's "TLS" relay type speaks it.
        let plain = try await CoturnTools.uclient(["-t", "-p", "\(port)", "-u", "alice", "-w", "wonderland",
                                                   "-e", "127.0.0.1", "-r", "\(peerPort)", "-n", "100", "-m", "2", "-l", "180", "-z", "5",
                                                   "127.0.0.1"])
        #expect(plain.sent >= 200 && plain.received == plain.sent && plain.lost == 0, "plain TCP: \(plain.received) of \(plain.sent)")
        #expect((try await metric(node, "meshnode_shared_port_connections_total{kind=\"turn_tls\"}") ?? 0) >= 1)
        #expect((try await metric(node, "meshnode_shared_port_connections_total{kind=\"turn_tcp\"}") ?? 0) >= 1)
        #expect((try await metric(node, "meshnode_shared_port_connections_total{kind=\"https\"}") ?? 0) >= 3)
    }

    @Test("SIGTERM with TURN allocations held over the shared port: the node exits 0 within the stop's bound")
    func gracefulStopWithTURNOnTheWebPort() async throws {
        let node = try await MeshNodeServer(["--https", "--single-port", "--user", "alice:wonderland", "--allow-peer", "127.0.0.0/8"],
                                            bind: ["127.0.0.1"])
        defer { node.stop() }
        let (peer, peerPort) = try await CoturnTools.startPeer(address: "127.0.0.1")
        defer { peer.stop() }
        // A long relayed flow over TLS on the web port (30 s of messages); stopped below.
        let client = try Subprocess("turnutils_uclient", ["-t", "-S", "-p", "\(node.httpPort)", "-u", "alice", "-w", "wonderland",
                                                          "-e", "127.0.0.1", "-r", "\(peerPort)", "-n", "3000", "-m", "2", "-l", "180",
                                                          "-z", "10", "127.0.0.1"], terminationGrace: .milliseconds(200))
        defer { client.stop() }
        try await waitUntil("allocations over the shared port", interval: .milliseconds(100)) {
            (try await metric(node, "meshnode_turn_allocations_active") ?? 0) >= 2
        }
        // The web server's graceful stop waits for its connections: the TURN ones on its port
        // close when asked (they have no request to finish) instead of holding it up.
        let stopping = ContinuousClock.now
        node.process.terminate(SIGTERM)
        let status = await node.process.waitForExit(timeout: .seconds(20))
        #expect(status == 0, "\(node.process.output.suffix(1500))")
        #expect(ContinuousClock.now - stopping < .seconds(10))
    }

    @Test("garbage and silence on the shared port are closed within the bound")
    func garbageAndSilenceAreClosed() async throws {
        // turn-idle-timeout bounds the TLS handshake and the first bytes on the shared port.
        let node = try await MeshNodeServer(["--https", "--single-port", "--turn-idle-timeout", "1"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let probe = SharedPortProbe(port: node.httpPort)
        // Neither TLS nor STUN: closed at once.
        #expect(try await probe.closedAfter(tls: false, sending: Array("hello?\r\n".utf8)) < .seconds(1))
        // HTTP in clear text: the page is HTTPS only, so only TURN is taken without TLS.
        #expect(try await probe.closedAfter(tls: false, sending: Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)) < .seconds(1))
        // TLS, then bytes that are neither STUN nor an HTTP request line.
        #expect(try await probe.closedAfter(tls: true, sending: [0xFF, 0xFE, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06]) < .seconds(1))
        #expect(try await probe.closedAfter(tls: true, sending: Array("ABCDEFGHIJ / HTTP/1.1\r\n".utf8)) < .seconds(1))
        // A STUN-shaped header without the magic cookie.
        #expect(try await probe.closedAfter(tls: true, sending: [0x00, 0x01, 0x00, 0x00, 0xDE, 0xAD, 0xBE, 0xEF]) < .seconds(1))
        // Silence, before TLS and inside it, and a slow trickle (one byte of "GET"): the bound.
        for (tls, bytes) in [(false, [UInt8]()), (true, []), (true, Array("G".utf8))] {
            let closed = try await probe.closedAfter(tls: tls, sending: bytes)
            #expect(closed >= .milliseconds(800) && closed < .seconds(5), "tls \(tls), \(bytes.count) bytes: closed after \(closed)")
        }
        #expect(node.process.isRunning)
        // Each of the seven closed connections is counted for the operator.
        #expect((try await metric(node, "meshnode_shared_port_connections_total{kind=\"closed\"}") ?? 0) >= 7)
    }

    @Test("the TURN caps hold an undecided connection; one that shows it is HTTP gives its place back")
    func capsHoldUndecidedConnections() async throws {
        let node = try await MeshNodeServer(["--https", "--single-port", "--turn-max-connections-per-ip", "3",
                                             "--turn-idle-timeout", "30"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let probe = SharedPortProbe(port: node.httpPort)
        // Three silent connections from 127.0.0.1 take the three places; a fourth is closed at once.
        let silent = try await (0..<3).asyncMap { _ in try await probe.open(tls: false) }
        try await waitUntil("three places taken", interval: .milliseconds(50)) {
            try await metric(node, "meshnode_turn_connections_active") == 3
        }
        #expect(try await probe.closedAfter(tls: false, sending: []) < .seconds(1))
        #expect(try await metric(node, "meshnode_shared_port_connections_total{kind=\"refused\"}") == 1)
        for channel in silent { try await channel.close() }
        try await waitUntil("the places of the closed connections are free", interval: .milliseconds(50)) {
            (try await metric(node, "meshnode_turn_connections_active") ?? 99) == 0
        }
        // HTTP requests on kept-alive connections give their places back: more than three of them
        // stay open side by side, and a fourth undecided connection is still let in.
        var kept: [Channel] = []
        for _ in 0..<4 {
            kept.append(try await probe.open(tls: true, sending: Array("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)))
            try await waitUntil("the place is given back", interval: .milliseconds(50)) {
                (try await metric(node, "meshnode_turn_connections_active") ?? 99) == 0
            }
        }
        let more = try await probe.open(tls: false)
        #expect(more.isActive)
        try await more.close()
        for channel in kept { #expect(channel.isActive); try await channel.close() }
    }
}

/// Raw TCP or TLS connections to the shared port, to play a client that misbehaves.
struct SharedPortProbe {
    let port: Int

    /// Opens a connection (TLS: handshake done, certificate not checked) and sends `bytes`.
    func open(tls: Bool, sending bytes: [UInt8] = []) async throws -> Channel {
        try await connect(tls: tls, sending: bytes, closed: nil)
    }

    /// How long after the connection was opened the server closed it (bounded by 10 s).
    func closedAfter(tls: Bool, sending bytes: [UInt8]) async throws -> Duration {
        let start = ContinuousClock.now
        let closed = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let channel = try await connect(tls: tls, sending: bytes, closed: closed)
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(10)) { closed.fail(TestTimeout(what: "the close", limit: .seconds(10))) }
        defer { timeout.cancel() }
        do {
            try await closed.futureResult.get()
        } catch {
            try? await channel.close()
            throw TestFailure("the server kept the connection open for 10 s")
        }
        return ContinuousClock.now - start
    }

    private func connect(tls: Bool, sending bytes: [UInt8], closed: EventLoopPromise<Void>?) async throws -> Channel {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        let context = try NIOSSLContext(configuration: configuration)
        // The TLS handler starts its handshake when connected and holds writes until it is done.
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil)) }
                    try channel.pipeline.syncOperations.addHandler(ProbeHandler(closed: closed))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        if !bytes.isEmpty { try await channel.writeAndFlush(ByteBuffer(bytes: bytes)) }
        return channel
    }
}

/// Reports the close; drops what it reads.
private final class ProbeHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let closed: EventLoopPromise<Void>?

    init(closed: EventLoopPromise<Void>?) {
        self.closed = closed
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed?.succeed()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
