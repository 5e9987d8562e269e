import Foundation
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
