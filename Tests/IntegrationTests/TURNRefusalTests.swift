import Foundation
import ICE
import NIOCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
import STUN
#endif

/// Every refusal the server must make, each against a real `meshnode serve` (RFC 8656 §7–§12,
/// RFC 8489 §9.2, and the secure-by-default peer policy of DESIGN.md).
@Suite(.serialized)
struct TURNRefusalTests {
    static let user = ["--user", "alice:wonderland"]

    @Test("IPv4 peers that are loopback, private, shared, link-local, multicast, reserved or unspecified get 403")
    func forbiddenIPv4Peers() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        #expect(try client.allocate().isSuccess)
        for peer in ["127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.5.4", "172.31.255.1", "192.168.1.1", "100.64.0.1",
                     "169.254.1.1", "224.0.0.1", "239.255.255.250", "0.0.0.0", "0.1.2.3", "255.255.255.255", "240.0.0.1", "192.88.99.1"] {
            #expect(try client.createPermission(peer).code == 403, "CreatePermission to \(peer)")
        }
        #expect(try client.channelBind("127.0.0.1", port: 9).code == 403)
        #expect(try client.channelBind("192.168.0.1", port: 9).code == 403)
        // A routable address is allowed: the policy is not a blanket refusal. Nothing is sent to it.
        #expect(try client.createPermission("203.0.113.5").isSuccess)
        #expect(try await server.metrics().contains(#"meshnode_turn_refusals_total{reason="forbidden_peer"}"#))
    }

    @Test("IPv6 peers, and IPv6 forms that embed forbidden IPv4 addresses, get 403")
    func forbiddenIPv6Peers() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort, host: "::1")
        let allocation = try client.allocate(family: .ipv6)
        #expect(allocation.isSuccess)
        #expect(try allocation.xorAddress(.xorRelayedAddress)?.ipAddress == "::1")
        for peer in ["::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
                     "::ffff:192.168.0.1", "::ffff:224.0.0.1", "::127.0.0.1", "::10.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1",
                     "2002:c0a8:101::", "64:ff9b:1::7f00:1", "64:ff9b:1::808:808", "2001::1", "100::1"] {
            #expect(try client.createPermission(peer).code == 403, "CreatePermission to \(peer)")
        }
        #expect(try client.createPermission("127.0.0.1").code == 443, "an IPv4 peer on an IPv6 relay")
        #expect(try client.createPermission("2001:db8::5").isSuccess)
    }

    @Test("allow rules open a block, deny rules beat them")
    func allowAndDeny() async throws {
        let server = try await MeshNodeServer(Self.user + ["--allow-peer", "10.0.0.0/8", "--deny-peer", "10.9.0.0/16"])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        #expect(try client.allocate().isSuccess)
        #expect(try client.createPermission("10.1.1.1").isSuccess)
        #expect(try client.createPermission("10.9.1.1").code == 403)
        #expect(try client.createPermission("127.0.0.1").code == 403)
        let v6 = try TURNTestClient(port: server.udpPort, host: "::1")
        #expect(try v6.allocate(family: .ipv6).isSuccess)
        #expect(try v6.createPermission("::ffff:10.1.1.1").isSuccess)
        #expect(try v6.createPermission("::ffff:10.9.1.1").code == 403)
    }

    @Test("wrong password, unknown user, wrong realm and expired REST credentials get 401")
    func badCredentials() async throws {
        let server = try await MeshNodeServer(Self.user + ["--turn-secret", "s3cret"])
        defer { server.stop() }
        #expect(try TURNTestClient(port: server.udpPort, password: "wrong").allocate().code == 401)
        #expect(try TURNTestClient(port: server.udpPort, username: "mallory").allocate().code == 401)
        let wrongRealm = try TURNTestClient(port: server.udpPort)
        _ = try wrongRealm.allocate()
        let realmClient = try TURNTestClient(port: server.udpPort)
        realmClient.realm = "elsewhere"
        realmClient.nonce = wrongRealm.nonce
        #expect(try realmClient.allocate().code == 401)
        let expired = "1000:bob"
        #expect(try TURNTestClient(port: server.udpPort, username: expired,
                                   password: TURNRESTCredentials.password(secret: "s3cret", username: expired)).allocate().code == 401)
        let fresh = TURNRESTCredentials(secret: "s3cret", id: "bob", lifetime: 600)
        #expect(try TURNTestClient(port: server.udpPort, username: fresh.username, password: fresh.password).allocate().isSuccess)
        let unsigned = try TURNTestClient(port: server.udpPort)
        #expect(try unsigned.transact(STUNMessage(type: STUNMessageType(.allocate, .request))).code == 401)
        #expect(try await server.metrics().contains("meshnode_turn_auth_failures_total"))
    }

    @Test("an expired nonce gets 438 Stale Nonce with a fresh nonce that then works")
    func staleNonce() async throws {
        let server = try await MeshNodeServer(Self.user + ["--nonce-lifetime", "1"])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        #expect(try client.allocate().isSuccess)
        let oldNonce = client.nonce
        // Refreshes with the same nonce succeed until it has run out, then get 438.
        let stale = try await waitFor("the nonce to go stale", interval: .milliseconds(100)) { () -> STUNMessage? in
            let answer = try client.request(.refresh, retryStale: false)
            return answer.isSuccess ? nil : answer
        }
        #expect(stale.code == 438)
        #expect(stale.nonce != nil && stale.nonce != oldNonce)
        // The fresh nonce works (followed again if a busy machine let it run out as well).
        client.nonce = stale.nonce
        #expect(try client.request(.refresh).isSuccess)
    }

    @Test("per-user and total allocation quotas give 486")
    func quotas() async throws {
        let server = try await MeshNodeServer(["--user", "a:pa", "--user", "b:pb", "--user-quota", "2", "--total-quota", "3"])
        defer { server.stop() }
        let a = try (0..<3).map { _ in try TURNTestClient(port: server.udpPort, username: "a", password: "pa") }
        #expect(try a[0].allocate().isSuccess)
        #expect(try a[1].allocate().isSuccess)
        #expect(try a[2].allocate().code == 486)
        let b = try (0..<2).map { _ in try TURNTestClient(port: server.udpPort, username: "b", password: "pb") }
        #expect(try b[0].allocate().isSuccess)
        #expect(try b[1].allocate().code == 486)
        // Freeing one (Refresh with lifetime 0, RFC 8656 §7.3) makes room again.
        #expect(try a[0].request(.refresh) { $0.append(.lifetime, uint32: 0) }.isSuccess)
        #expect(try b[1].allocate().isSuccess)
    }

    @Test("unsupported transports: 442 for an unknown protocol, 400 for TCP relaying over UDP")
    func wrongTransport() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        #expect(try TURNTestClient(port: server.udpPort).allocate(transport: TURNTransportProtocol(rawValue: 99)).code == 442)
        #expect(try TURNTestClient(port: server.udpPort).allocate(transport: .tcp).code == 400)
        #expect(try TURNTestClient(port: server.udpPort).request(.allocate).code == 400, "no REQUESTED-TRANSPORT")
        #expect(try TURNTestClient(port: server.udpPort).allocate(family: STUNAddressFamily(rawValue: 0x07)).code == 440)
    }

    @Test("437 for a second Allocate and for requests without an allocation; a retransmission gets the same answer")
    func allocationMismatch() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        var request = STUNMessage(type: STUNMessageType(.allocate, .request))
        _ = try client.allocate() // learns realm and nonce, creates the allocation
        #expect(try client.allocate().code == 437)
        let other = try TURNTestClient(port: server.udpPort)
        #expect(try other.request(.refresh).code == 437)
        #expect(try other.createPermission("203.0.113.1").code == 437)
        // Retransmission: the same transaction ID gets the cached success.
        let fresh = try TURNTestClient(port: server.udpPort)
        request.appendRequestedTransport(.udp)
        request.append(.username, string: "alice")
        fresh.realm = client.realm
        fresh.nonce = client.nonce
        request.append(.realm, string: client.realm!)
        request.append(.nonce, string: client.nonce!)
        let first = try fresh.transact(request, key: fresh.key)
        let again = try fresh.transact(request, key: fresh.key)
        #expect(first.isSuccess && again.isSuccess)
        #expect(try first.xorAddress(.xorRelayedAddress) == again.xorAddress(.xorRelayedAddress))
    }

    @Test("an unknown comprehension-required attribute gets 420 with UNKNOWN-ATTRIBUTES")
    func unknownAttribute() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        let response = try client.allocate { $0.append(STUNAttributeType(rawValue: 0x7F00), bytes: [1, 2, 3, 4]) }
        #expect(response.code == 420)
        #expect(response.unknownAttributes() == [STUNAttributeType(rawValue: 0x7F00)])
    }

    @Test("RFC 5780 is off by default: CHANGE-REQUEST gets 420")
    func rfc5780Off() async throws {
        let server = try await MeshNodeServer([])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        var binding = STUNMessage(type: STUNMessageType(.binding, .request))
        binding.append(.changeRequest, uint32: 0x6)
        let response = try client.transact(binding)
        #expect(response.code == 420)
        let plain = try client.transact(STUNMessage(type: STUNMessageType(.binding, .request)))
        #expect(plain.isSuccess)
        #expect(try plain.xorAddress(.xorMappedAddress)?.ipAddress == "127.0.0.1")
    }

    @Test("malformed datagrams and TCP garbage leave the server answering")
    func survivesGarbage() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        var rng = SystemRandomNumberGenerator()
        let valid = Array(STUNMessage(type: STUNMessageType(.binding, .request)).encode(fingerprint: true).readableBytesView)
        for i in 0..<600 {
            switch i % 4 {
            case 0: client.sendRaw((0..<Int.random(in: 1...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            case 1: client.sendRaw(Array(valid.prefix(Int.random(in: 0..<valid.count, using: &rng))))
            case 2: client.sendRaw([0x40, 0x01, 0xFF, 0xFF, 1, 2])
            default:
                var mutated = valid
                mutated[Int.random(in: 0..<mutated.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                client.sendRaw(mutated)
            }
        }
        // A first byte of 0x80 or more can start neither STUN nor ChannelData (RFC 7983).
        let garbage = [UInt8.random(in: 0x80...0xFF)] + (0..<4095).map { _ in UInt8.random(in: 0...255) }
        let tcp = try await TCPGarbage.send(port: server.udpPort, bytes: garbage)
        #expect(tcp, "the server closed the garbage TCP connection")
        let probe = try TURNTestClient(port: server.udpPort)
        #expect(try probe.transact(STUNMessage(type: STUNMessageType(.binding, .request))).isSuccess)
        #expect(try probe.allocate().isSuccess)
    }

    @Test("data to a peer without a permission is dropped (RFC 8656 §9)")
    func noPermissionNoRelay() async throws {
        let server = try await MeshNodeServer(Self.user + ["--allow-peer", "127.0.0.0/8"])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        #expect(try client.allocate().isSuccess)
        client.sendRaw(Self.sendIndication("hello", to: 9))
        // The server counts what it drops for want of a permission.
        try await server.waitForMetric(#"meshnode_turn_dropped_packets_total{reason="no_permission"}"#)
        let relayed = try await server.metric(#"meshnode_turn_relayed_packets_total{direction="to_peer"}"#)
        #expect(relayed ?? 0 == 0, "relayed \(relayed ?? 0) packets without a permission")
    }

    @Test("with a permission, Send indications reach the peer and its answer comes back as a Data indication",
          .enabled(if: Tools.coturnClients, "coturn's turnutils_peer is the echo peer: install Debian's coturn (`make deps`)"))
    func permissionRelays() async throws {
        let server = try await MeshNodeServer(Self.user + ["--allow-peer", "127.0.0.0/8"])
        defer { server.stop() }
        let (peer, peerPort) = try await CoturnTools.startPeer(address: "127.0.0.1")
        defer { peer.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        #expect(try client.allocate().isSuccess)
        // Sent before the permission: the peer must never see it, so its echo never comes.
        client.sendRaw(Self.sendIndication("too early", to: peerPort))
        #expect(try client.createPermission("127.0.0.1", port: peerPort).isSuccess)
        client.sendRaw(Self.sendIndication("hello", to: peerPort))
        // The echo peer answers in order, and the relay keeps the order: the first Data
        // indication is the answer to "hello", not to "too early".
        let echoed = try #require(client.unsolicited.first ?? client.receiveRaw())
        let data = try STUNMessage(parsing: echoed)
        #expect(data.type == STUNMessageType(.data, .indication))
        #expect(data.attribute(.data).map { String(decoding: $0.readableBytesView, as: UTF8.self) } == "hello")
    }

    @Test("a Refresh with lifetime 0 deletes the allocation (RFC 8656 §7.3)")
    func refreshZeroDeletes() async throws {
        let server = try await MeshNodeServer(Self.user + ["--allow-peer", "127.0.0.0/8"])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        #expect(try client.allocate().isSuccess)
        #expect(try client.createPermission("127.0.0.1").isSuccess)
        #expect(try client.request(.refresh) { $0.append(.lifetime, uint32: 0) }.isSuccess)
        #expect(try client.createPermission("127.0.0.1").code == 437)
    }

    @Test("the per-allocation bandwidth cap drops what exceeds it",
          .enabled(if: Tools.coturnClients, "coturn's turnutils_peer is the echo peer: install Debian's coturn (`make deps`)"))
    func bandwidthCap() async throws {
        let server = try await MeshNodeServer(Self.user + ["--allow-peer", "127.0.0.0/8", "--max-bps", "80000"])
        defer { server.stop() }
        let (peer, peerPort) = try await CoturnTools.startPeer(address: "127.0.0.1")
        defer { peer.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        #expect(try client.allocate().isSuccess)
        #expect(try client.channelBind("127.0.0.1", port: peerPort).isSuccess)
        let frame = ChannelData(channel: 0x4001, data: ByteBuffer(bytes: [UInt8](repeating: 7, count: 1000))).encode(padded: false)
        let marker = ChannelData(channel: 0x4001, data: ByteBuffer(string: "marker")).encode(padded: false)
        let start = ContinuousClock.now
        for _ in 0..<100 { client.sendRaw(frame) } // 100 kB at once against a 10 kB/s cap
        // Then small markers until one comes back: the echoes keep their order, so every
        // 1000-byte echo that got through is in before the first marker.
        var echoed = 0
        var markerBack = false
        while !markerBack {
            try #require(ContinuousClock.now - start < TestDeadline.event, "no marker came back")
            client.sendRaw(marker)
            while let datagram = client.receiveRaw(timeout: 0.2) {
                if datagram.readableBytes >= 1000 { echoed += 1 } else { markerBack = true }
            }
        }
        // The budget per direction is 5 kB of burst plus 10 kB/s over however long this took:
        // a slow machine only raises the bound.
        let seconds = Double((ContinuousClock.now - start).inMilliseconds) / 1000
        let budget = 5 + Int(10 * seconds) + 1
        #expect(echoed >= 3 && echoed <= budget, "echoed \(echoed) of 100, budget \(budget) over \(seconds) s")
        try await server.waitForMetric(#"meshnode_turn_dropped_packets_total{reason="bandwidth"}"#)
    }

    /// A Send indication carrying `text` to 127.0.0.1:`port`.
    static func sendIndication(_ text: String, to port: Int) -> ByteBuffer {
        var send = STUNMessage(type: STUNMessageType(.send, .indication))
        send.appendXORAddress(.xorPeerAddress, try! SocketAddress(ipAddress: "127.0.0.1", port: port))
        send.append(.data, bytes: Array(text.utf8))
        return send.encode()
    }
}

/// Sends bytes on a TCP connection and reports whether the server closed it.
enum TCPGarbage {
    static func send(port: Int, bytes: [UInt8]) async throws -> Bool {
        guard let fd = LoopbackSocket.connect(port: port) else { return false }
        defer { close(fd) }
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }
}
