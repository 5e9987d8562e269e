import Foundation
import ICE
import NIOCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
import STUN
#endif

/// Issue 15, finding 8 and the TURN part of finding 9, each played by the attacker against a
/// real `meshnode serve`: a quota renewed by logging in again, TCP connections held open with
/// one Binding each, connections beyond a source's share and beyond the server's, the node's
/// one connection budget, reflection through unauthenticated answers, and the relay used to
/// reach its own listeners. Each test also checks that legitimate use keeps working.
@Suite(.serialized)
struct TURNAbuseTests {
    static let user = ["--user", "alice:wonderland"]

    static let binding = STUNMessage(type: STUNMessageType(.binding, .request))

    /// A client with TURN REST credentials for `name`, valid for `lifetime` seconds.
    static func restClient(port: Int, name: String, lifetime: Int) throws -> TURNTestClient {
        let login = TURNRESTCredentials(secret: "s3cret", id: name, lifetime: lifetime)
        return try TURNTestClient(port: port, username: login.username, password: login.password)
    }

    @Test("a fresh TURN REST login brings no fresh quota: allocations count by the name, not by EXPIRY:NAME")
    func quotaCountsTheNameNotTheUsername() async throws {
        let server = try await MeshNodeServer(["--turn-secret", "s3cret", "--user-quota", "2"])
        defer { server.stop() }
        // Mallory logs in three times: three usernames 600:mallory, 900:mallory, 1200:mallory.
        let first = try Self.restClient(port: server.udpPort, name: "mallory", lifetime: 600)
        #expect(try first.allocate().isSuccess)
        #expect(try Self.restClient(port: server.udpPort, name: "mallory", lifetime: 900).allocate().isSuccess)
        let third = try Self.restClient(port: server.udpPort, name: "mallory", lifetime: 900).allocate()
        #expect(third.code == 486)
        #expect(try third.errorCode()?.reason.contains("mallory holds its maximum of 2") == true, "\(String(describing: try? third.errorCode()))")
        #expect(try Self.restClient(port: server.udpPort, name: "mallory", lifetime: 1200).allocate().code == 486)
        // Another name has a quota of its own.
        #expect(try Self.restClient(port: server.udpPort, name: "carol", lifetime: 600).allocate().isSuccess)
        // A freed allocation is room for any of mallory's logins (RFC 8656 §7.3: lifetime 0 deletes).
        #expect(try first.request(.refresh) { $0.append(.lifetime, uint32: 0) }.isSuccess)
        #expect(try Self.restClient(port: server.udpPort, name: "mallory", lifetime: 1200).allocate().isSuccess)
        #expect(try await server.metrics().contains(#"meshnode_turn_refusals_total{reason="quota"}"#))
    }

    @Test("300 unauthenticated TCP connections that each sent one Binding are closed after the idle timeout; an allocation keeps its connection")
    func idleConnectionsAreClosed() async throws {
        let server = try await MeshNodeServer(Self.user + ["--turn-idle-timeout", "1", "--turn-max-connections", "400",
                                                           "--turn-max-connections-per-ip", "400"], bind: ["127.0.0.1"])
        defer { server.stop() }
        let legitimate = try TURNTestClient(port: server.udpPort, stream: true)
        #expect(try legitimate.allocate().isSuccess)

        var attackers: [TURNTestClient] = []
        var answered = 0
        for _ in 0..<300 {
            let attacker = try TURNTestClient(port: server.udpPort, stream: true)
            if try attacker.transact(Self.binding, timeout: 10).isSuccess { answered += 1 }
            attackers.append(attacker)
        }
        let lastOpened = ContinuousClock.now
        #expect(answered == 300, "Bindings are answered over TCP")
        let closed = attackers.filter { $0.waitForClose(timeout: 20) }.count
        let reclaimed = ContinuousClock.now - lastOpened
        #expect(closed == 300, "\(closed) of 300 connections closed")
        print("TURNAbuseTests: 300 idle TCP connections reclaimed \(reclaimed) after the last was opened (idle timeout 1 s)")
        #expect(reclaimed < .seconds(10))
        try await waitUntil("the server to hold only the legitimate connection") {
            try await server.metric("meshnode_turn_connections_active") == 1
        }
        #expect((try await server.metric("meshnode_turn_idle_connections_closed_total") ?? 0) >= 300)

        // The allocation kept its connection well past the idle timeout; once it ends, the
        // connection gets the idle timeout again and is closed.
        #expect(try legitimate.request(.refresh).isSuccess)
        #expect(try legitimate.request(.refresh) { $0.append(.lifetime, uint32: 0) }.isSuccess)
        #expect(legitimate.waitForClose(timeout: 20))
    }

    @Test("beyond his per-IP share an attacker's TCP connections are closed at once; a client at another address allocates")
    func perSourceCap() async throws {
        let server = try await MeshNodeServer(Self.user + ["--turn-max-connections-per-ip", "20"], bind: ["127.0.0.1"])
        defer { server.stop() }
        var held = try (0..<20).map { _ in try TURNTestClient(port: server.udpPort, stream: true) }
        #expect(try held.allSatisfy { try $0.transact(Self.binding, timeout: 10).isSuccess })
        for _ in 0..<5 {
            let refused = try TURNTestClient(port: server.udpPort, stream: true)
            refused.sendRaw(Self.binding.encode())
            #expect(refused.receiveRaw(timeout: 10) == nil && refused.closedByServer, "a connection beyond the share is closed unanswered")
        }
        #expect((try await server.metric(#"meshnode_turn_refusals_total{reason="connections_per_source"}"#) ?? 0) >= 5)

        // Legitimate use: a TCP client at another address, and UDP from the attacker's own.
        let legitimate = try TURNTestClient(port: server.udpPort, stream: true, source: "127.0.0.2")
        #expect(try legitimate.allocate().isSuccess)
        #expect(try TURNTestClient(port: server.udpPort).allocate().isSuccess)
        // A connection the attacker gives up frees its place.
        held.removeFirst()
        let again = try await waitFor("a freed place") { () -> TURNTestClient? in
            let client = try TURNTestClient(port: server.udpPort, stream: true)
            return (try? client.transact(Self.binding, timeout: 5))?.isSuccess == true ? client : nil
        }
        #expect(!again.closedByServer)
    }

    @Test("the total cap refuses connections from every address; UDP keeps working")
    func totalCap() async throws {
        let server = try await MeshNodeServer(Self.user + ["--turn-max-connections", "30", "--turn-max-connections-per-ip", "20"],
                                              bind: ["127.0.0.1"])
        defer { server.stop() }
        let first = try (0..<20).map { _ in try TURNTestClient(port: server.udpPort, stream: true) }
        let second = try (0..<10).map { _ in try TURNTestClient(port: server.udpPort, stream: true, source: "127.0.0.3") }
        #expect(try (first + second).allSatisfy { try $0.transact(Self.binding, timeout: 10).isSuccess })
        let refused = try TURNTestClient(port: server.udpPort, stream: true, source: "127.0.0.4")
        refused.sendRaw(Self.binding.encode())
        #expect(refused.receiveRaw(timeout: 10) == nil && refused.closedByServer)
        #expect((try await server.metric(#"meshnode_turn_refusals_total{reason="connections"}"#) ?? 0) >= 1)
        #expect(try TURNTestClient(port: server.udpPort).allocate().isSuccess)
    }

    @Test("WebSocket and TURN connections share the node's one budget (max-connections)")
    func sharedBudget() async throws {
        let server = try await MeshNodeServer(Self.user + ["--max-connections", "8"], bind: ["127.0.0.1"])
        defer { server.stop() }
        var turn = try (0..<8).map { _ in try TURNTestClient(port: server.udpPort, stream: true) }
        #expect(try turn.allSatisfy { try $0.transact(Self.binding, timeout: 10).isSuccess })
        let refused = try TURNTestClient(port: server.udpPort, stream: true, source: "127.0.0.2")
        refused.sendRaw(Self.binding.encode())
        #expect(refused.receiveRaw(timeout: 10) == nil && refused.closedByServer)
        #expect((try await server.metric(#"meshnode_turn_refusals_total{reason="connection_budget"}"#) ?? 0) >= 1)
        // The budget is spent: a WebSocket client is refused with 1013 Try Again Later.
        #expect(try rawWebSocketUpgrade(port: server.httpPort).closeCode == 1013)
        // TURN connections that close give their slots back, to WebSocket clients too.
        turn.removeLast(2)
        try await waitUntil("a WebSocket client to get its challenge") { try rawWebSocketUpgrade(port: server.httpPort).opcode == 0x1 }
    }

    @Test("a peer cannot hold more than 64 connections to one TCP allocation (RFC 6062); a freed place is usable again")
    func peerConnectionCap() async throws {
        let server = try await MeshNodeServer(Self.user + ["--allow-peer", "127.0.0.0/8"], bind: ["127.0.0.1"])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort, stream: true)
        let relay = try #require(try client.allocate(transport: .tcp).xorAddress(.xorRelayedAddress)?.port)
        #expect(try client.createPermission("127.0.0.1").isSuccess)
        // The peer opens connections to the relayed address; each waits for a ConnectionBind.
        var peers: [TURNTestClient] = []
        var attempts = 0
        for _ in 0..<64 {
            peers.append(try TURNTestClient(port: relay, stream: true))
            if let indication = client.receiveRaw(timeout: 10),
               try STUNMessage(parsing: indication).type == STUNMessageType(.connectionAttempt, .indication) { attempts += 1 }
        }
        #expect(attempts == 64)
        let refused = try TURNTestClient(port: relay, stream: true)
        #expect(refused.waitForClose(timeout: 10), "the 65th peer connection is closed at once")
        #expect((try await server.metric(#"meshnode_turn_refusals_total{reason="peer_connections"}"#) ?? 0) >= 1)
        // The peer drops one; the next connection is announced again.
        peers.removeLast()
        let announced = try await waitFor("a freed place") { () -> TURNTestClient? in
            let peer = try TURNTestClient(port: relay, stream: true)
            guard let indication = client.receiveRaw(timeout: 2) else { return nil }
            return try STUNMessage(parsing: indication).type == STUNMessageType(.connectionAttempt, .indication) ? peer : nil
        }
        #expect(!announced.closedByServer)
    }

    @Test("strangers over UDP get short answers: a 20-byte Allocate gets a 68-byte 401, a 20-byte Binding a 32-byte answer")
    func strangersGetShortAnswers() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        let allocate = STUNMessage(type: STUNMessageType(.allocate, .request)).encode()
        #expect(allocate.readableBytes == 20)
        client.sendRaw(allocate)
        let challenge = try #require(client.receiveRaw(timeout: 10))
        print("TURNAbuseTests: a 20-byte Allocate is answered with \(challenge.readableBytes) bytes")
        #expect(challenge.readableBytes == 68)
        let parsed = try STUNMessage(parsing: challenge)
        #expect(parsed.code == 401)
        #expect(parsed.realm == "meshnode" && parsed.nonce != nil, "a TURN client gets what it needs to authenticate")
        #expect(try parsed.errorCode()?.reason == "")
        #expect(!parsed.hasFingerprint)

        client.sendRaw(Self.binding.encode())
        let mapped = try #require(client.receiveRaw(timeout: 10))
        print("TURNAbuseTests: a 20-byte Binding is answered with \(mapped.readableBytes) bytes")
        #expect(mapped.readableBytes == 32)
        #expect(try STUNMessage(parsing: mapped).xorAddress(.xorMappedAddress)?.ipAddress == "127.0.0.1", "ICE still learns its address")
        // A request with FINGERPRINT (ICE multiplexes STUN with media) gets FINGERPRINT back.
        let fingerprinted = try client.transact(Self.binding)
        #expect(fingerprinted.hasFingerprint)

        // Authenticated users are known: their errors say why, and carry FINGERPRINT.
        #expect(try client.allocate().isSuccess)
        let second = try client.allocate()
        #expect(second.code == 437 && second.hasFingerprint)
        #expect(try second.errorCode()?.reason.isEmpty == false)
    }

    @Test("the relay refuses its own listeners as peers even where an allow rule opens its address; its relay ports stay open")
    func ownListenersRefused() async throws {
        let server = try await MeshNodeServer(Self.user + ["--allow-peer", "127.0.0.0/8"], bind: ["127.0.0.1"])
        defer { server.stop() }
        let mallory = try TURNTestClient(port: server.udpPort)
        let relayMallory = try #require(try mallory.allocate().xorAddress(.xorRelayedAddress))
        #expect(try mallory.createPermission("127.0.0.1", port: server.udpPort).code == 403)
        #expect(try mallory.channelBind("127.0.0.1", port: server.udpPort).code == 403)
        #expect(try mallory.channelBind("127.0.0.1", port: server.tlsPort, channel: 0x4002).code == 403)

        // Relay to relay through the same server works: two clients that both need a relay.
        let bob = try TURNTestClient(port: server.udpPort)
        let relayBob = try #require(try bob.allocate().xorAddress(.xorRelayedAddress))
        #expect(try bob.createPermission("127.0.0.1", port: relayMallory.port ?? 0).isSuccess)
        #expect(try mallory.createPermission("127.0.0.1", port: relayBob.port ?? 0).isSuccess)
        mallory.sendRaw(Self.sendIndication(Array("hello".utf8), to: relayBob.port ?? 0))
        let data = try STUNMessage(parsing: try #require(bob.unsolicited.first ?? bob.receiveRaw(timeout: 10)))
        #expect(data.attribute(.data).map { String(decoding: $0.readableBytesView, as: UTF8.self) } == "hello")

        // With a permission for 127.0.0.1, a Send indication to the listener carrying a Binding
        // is dropped: the server never answers itself through the relay.
        let inner = Array(Self.binding.encode(fingerprint: true).readableBytesView)
        mallory.sendRaw(Self.sendIndication(inner, to: server.udpPort))
        try await server.waitForMetric(#"meshnode_turn_dropped_packets_total{reason="forbidden_peer"}"#)
        #expect(mallory.receiveRaw(timeout: 0.5) == nil, "no Data indication from the listener")
    }

    /// A Send indication carrying `bytes` to 127.0.0.1:`port`.
    static func sendIndication(_ bytes: [UInt8], to port: Int) -> ByteBuffer {
        var send = STUNMessage(type: STUNMessageType(.send, .indication))
        send.appendXORAddress(.xorPeerAddress, try! SocketAddress(ipAddress: "127.0.0.1", port: port))
        send.append(.data, bytes: bytes)
        return send.encode()
    }

    @Test("a client failing authentication in a loop leaves a few log lines, each counting those left out; the metric counts all")
    func authenticationFailuresDoNotFloodTheLog() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let attempts = 200
        for _ in 0..<attempts {
            let guesser = try TURNTestClient(port: server.udpPort, username: "alice", password: "guess")
            #expect(try guesser.allocate().code == 401)
        }
        try await waitUntil("every failure counted") {
            (try await server.metric("meshnode_turn_auth_failures_total") ?? 0) >= Double(attempts)
        }
        // One line per kind, per event loop and 10 s: this test runs well within 10 s on at most
        // a few loops, so a handful of lines at most where there were 200 before.
        let lines = server.process.output.components(separatedBy: "\n").filter { $0.contains("authentication failed") }
        #expect(lines.count >= 1 && lines.count <= 8, "\(lines.count) lines for \(attempts) failures")
        #expect(try TURNTestClient(port: server.udpPort, username: "alice", password: "wonderland").allocate().isSuccess)
    }
}
