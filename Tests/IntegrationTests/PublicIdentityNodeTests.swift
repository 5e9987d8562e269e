import Foundation
import Signaling
import NIOCore
import STUN
import Testing
import TestSupport

/// The node's public identity against a real `meshnode serve` (issue 13, item 2): a relay behind
/// a 1:1 NAT advertises the public address, each bind address serves the web port and relays on
/// itself, and the plain-HTTP listener only redirects to HTTPS on the node's own host.
@Suite(.serialized, .timeLimit(.minutes(2))) struct PublicIdentityNodeTests {
    static let user = ["--user", "alice:wonderland", "--allow-peer", "127.0.0.0/8"]

    func curl(_ arguments: [String]) async throws -> String {
        try await Subprocess.run("/usr/bin/curl", ["-sS", "--max-time", "10"] + arguments).output
    }

    @Test("external-ip: a real TURN allocation gets XOR-RELAYED-ADDRESS on the public address, while the socket is bound on the private one")
    func externalIPInRelayedAddress() async throws {
        let server = try await MeshNodeServer(Self.user + ["--external-ip", "203.0.113.5/127.0.0.1"], bind: ["127.0.0.1"])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        let relayed = try #require(try client.allocate().xorAddress(.xorRelayedAddress))
        #expect(relayed.ipAddress == "203.0.113.5", "relayed \(relayed)")
        // The relay socket is bound on the private address: a peer there that sends to the
        // relayed port (as the NAT would deliver it) reaches the client.
        let peer = try UDPPeer()
        #expect(try client.createPermission("127.0.0.1", port: peer.port).isSuccess)
        peer.send([1, 2, 3], to: try SocketAddress(ipAddress: "127.0.0.1", port: try #require(relayed.port)))
        let indication = try #require(client.receiveRaw(timeout: 5), "nothing relayed from the private side")
        #expect(indication.readableBytes > 20)
    }

    @Test("every bind address serves the web port, and a relay opens on the address the client reached")
    func everyBindServes() async throws {
        let server = try await MeshNodeServer(Self.user, bind: ["127.0.0.1", "127.0.0.2"])
        defer { server.stop() }
        for host in ["127.0.0.1", "127.0.0.2"] {
            #expect(try await curl(["http://\(host):\(server.httpPort)/health"]) == "ok\n", "web port on \(host)")
            let client = try TURNTestClient(port: server.udpPort, host: host)
            let relayed = try #require(try client.allocate().xorAddress(.xorRelayedAddress))
            #expect(relayed.ipAddress == host, "a client that reached \(host) got a relay on \(relayed)")
        }
    }

    @Test("RFC 6156: a client that reached the IPv6 listener gets an IPv6 relay there when it asks for one, and the IPv4 relay by default")
    func relayFamilies() async throws {
        let hasIPv6 = ((try? System.enumerateDevices()) ?? []).contains { $0.address?.ipAddress == "::1" }
        guard hasIPv6 else { return }
        let server = try await MeshNodeServer(Self.user + ["--allow-peer", "::1/128"], bind: ["127.0.0.2", "::1"])
        defer { server.stop() }
        let v6 = try TURNTestClient(port: server.udpPort, host: "::1")
        let relayed6 = try #require(try v6.allocate(family: .ipv6).xorAddress(.xorRelayedAddress))
        #expect(relayed6.ipAddress == "::1")
        let byDefault = try TURNTestClient(port: server.udpPort, host: "::1")
        let relayed4 = try #require(try byDefault.allocate().xorAddress(.xorRelayedAddress))
        #expect(relayed4.ipAddress == "127.0.0.2", "RFC 8656 §7.1: without REQUESTED-ADDRESS-FAMILY the relay is IPv4")
    }

    @Test("with https and no certificate files, the self-signed certificate names the public host and the bind addresses")
    func selfSignedCertificateNames() async throws {
        let data = TemporaryDirectory("named-cert")
        let server = try await MeshNodeServer(Self.user + ["--https", "--public-host", "meet.example.test", "--data-dir", data.path],
                                              bind: ["127.0.0.1"])
        defer { server.stop() }
        let names = try await Subprocess.run("/usr/bin/openssl", ["x509", "-in", data.path + "/web-tls-cert.pem", "-noout", "-ext", "subjectAltName"]).output
        #expect(names.contains("DNS:meet.example.test") && names.contains("IP Address:127.0.0.1") && names.contains("DNS:localhost"), "\(names)")
        // A client that checks the name against the certificate (pinned here, as no CA signed it).
        let served = try await TestCertificateAuthority.presentedFingerprint(port: server.httpPort)
        #expect(served == (try await TestCertificateAuthority.fingerprint(ofPEM: data.path + "/web-tls-cert.pem")))
    }

    @Test("http-redirect-port: 301 to the same path over https on the node's host; a foreign Host header is not followed")
    func redirectListener() async throws {
        let redirectPort = MeshNodeServer.nextHTTPPort()
        let server = try await MeshNodeServer(Self.user + ["--https", "--http-redirect-port", "\(redirectPort)"], bind: ["127.0.0.1"])
        defer { server.stop() }
        let format = ["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"]
        let own = try await curl(format + ["http://127.0.0.1:\(redirectPort)/call?x=1"])
        #expect(own == "301 https://127.0.0.1:\(server.httpPort)/call?x=1")
        let foreign = try await curl(format + ["-H", "Host: evil.example", "http://127.0.0.1:\(redirectPort)/"])
        #expect(foreign == "301 https://127.0.0.1:\(server.httpPort)/")
        let local = try await curl(format + ["http://localhost:\(redirectPort)/a"])
        #expect(local == "301 https://localhost:\(server.httpPort)/a")
    }
}

/// A link dialled at a node's name (`--link ws://NAME:PORT/ws`), not at its numeric address:
/// the node takes the link signed for that name and answers as it, and peers address each other
/// through it (docs/protocol.md "Node links").
@Suite(.serialized, .timeLimit(.minutes(2))) struct NamedLinkTests {
    @Test("--link ws://localhost:PORT to a node with --public-host localhost links, and chat crosses it both ways")
    func linkDialledAtTheName() async throws {
        let east = try await MeshNodeServer(["--bind", "127.0.0.1", "--public-host", "localhost"], bind: [])
        defer { east.stop() }
        let eastName = "localhost:\(east.httpPort)"
        let west = try await MeshNodeServer(["--bind", "127.0.0.1", "--link", "ws://\(eastName)/ws"], bind: [])
        defer { west.stop() }
        let westAddress = "127.0.0.1:\(west.httpPort)"

        let bob = SignalingClient(url: east.signalingURL, name: "bob", identity: .generate(), requestTimeout: .seconds(20))
        let bobEvents = EventLog(bob)
        try await bob.connect()
        let alice = SignalingClient(url: west.signalingURL, name: "alice", identity: .generate(), requestTimeout: .seconds(20))
        let aliceEvents = EventLog(alice)
        try await alice.connect()

        try await alice.subscribe(["bob@\(eastName)"])
        try await aliceEvents.wait {
            if case .presence(let p) = $0, p.name == "bob@\(eastName)", p.status == .online { p } else { nil }
        }
        #expect(try await alice.send(text: "to the name", to: "bob@\(eastName)") == .ok)
        let received = try await bobEvents.wait { if case .chat(let m) = $0, m.text == "to the name" { m } else { nil } }
        #expect(received.from == "alice@\(westAddress)")
        #expect(try await bob.send(text: "back", to: received.from) == .ok)
        try await aliceEvents.wait { if case .chat(let m) = $0, m.text == "back" { m } else { nil } }
        await alice.close()
        await bob.close()
    }
}
