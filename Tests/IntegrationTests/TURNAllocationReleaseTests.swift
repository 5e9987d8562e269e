import ICE
import NIOCore
import NIOPosix
import STUN
import Testing

/// Allocate requests that fail after the server reserved a relay port and a place in the quota
/// (RFC 8656 §7.2) give both back at once: a user who hits them, by accident or on purpose,
/// cannot wear the server's ports or its own quota down. Against a real `meshnode serve` with a
/// two-port relay range and a quota of one allocation per user.
@Suite(.serialized)
struct TURNAllocationReleaseTests {
    /// An even relay port and the next one, which no other test server of this run holds.
    let low = MeshNodeServer.nextRelayRange(count: 2).lowerBound

    func startServer() async throws -> MeshNodeServer {
        try await MeshNodeServer(["--user", "alice:wonderland", "--user", "bob:builder", "--user-quota", "1",
                                  "--relay-ports", "\(low)-\(low + 1)"])
    }

    /// Holds a UDP port on the relay address, as another program on the host would.
    func occupy(_ port: Int) async throws -> Channel {
        try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: port).get()
    }

    /// EVEN-PORT with the R bit: reserve the next port too (RFC 8656 §18.7).
    static func evenPortReservingNext(_ message: inout STUNMessage) {
        message.append(.evenPort, bytes: [0x80])
    }

    @Test("relay ports held by another program: the failed Allocates give back the user's quota and every port")
    func failedBindsRelease() async throws {
        let server = try await startServer()
        defer { server.stop() }
        let blockers = [try await occupy(low), try await occupy(low + 1)]
        // Every port of the range is taken: the server tries them all, then gives up.
        #expect(try TURNTestClient(port: server.udpPort).allocate().code == 508)
        // With only the even port taken, EVEN-PORT with R reserves the odd one, then fails to
        // bind the even one: the reservation of the odd port must go with it.
        try await blockers[1].close()
        let even = try TURNTestClient(port: server.udpPort).allocate(build: Self.evenPortReservingNext)
        #expect(even.code == 508)
        try await blockers[0].close()
        // Alice's quota of one is free again, and so are both ports: Bob gets the second at once,
        // not after the 30 s a reservation would have lasted.
        let alice = try TURNTestClient(port: server.udpPort).allocate()
        #expect(alice.isSuccess, "\(String(describing: try? alice.errorCode()))")
        let bob = try TURNTestClient(port: server.udpPort, username: "bob", password: "builder").allocate()
        #expect(bob.isSuccess, "\(String(describing: try? bob.errorCode()))")
        let ports = Set([alice, bob].compactMap { try? $0.xorAddress(.xorRelayedAddress)?.port })
        #expect(ports == [low, low + 1])
    }

    @Test("a RESERVATION-TOKEN claimed by an Allocate refused for quota: the reserved port is free again")
    func claimRefusedForQuota() async throws {
        let server = try await startServer()
        defer { server.stop() }
        let first = try TURNTestClient(port: server.udpPort)
        let reserving = try first.allocate(build: Self.evenPortReservingNext)
        #expect(reserving.isSuccess)
        #expect(try reserving.xorAddress(.xorRelayedAddress)?.port == low)
        let token = try #require(try reserving.uint64(.reservationToken))
        // Alice holds her one allocation: the claim of the reserved port is refused after it
        // was made.
        let claim = try TURNTestClient(port: server.udpPort).allocate { $0.append(.reservationToken, uint64: token) }
        #expect(claim.code == 486)
        // The claimed port went back to the pool: it is the only free one, and Bob gets it.
        let bob = try TURNTestClient(port: server.udpPort, username: "bob", password: "builder").allocate()
        #expect(bob.isSuccess)
        #expect(try bob.xorAddress(.xorRelayedAddress)?.port == low + 1)
        // The token was used up by the refused claim.
        #expect(try first.request(.refresh) { $0.append(.lifetime, uint32: 0) }.isSuccess)
        let again = try TURNTestClient(port: server.udpPort).allocate { $0.append(.reservationToken, uint64: token) }
        #expect(again.code == 400)
        // And Alice's quota is whole: with her allocation deleted, she gets the freed port.
        let alice = try TURNTestClient(port: server.udpPort).allocate()
        #expect(alice.isSuccess)
        #expect(try alice.xorAddress(.xorRelayedAddress)?.port == low)
    }
}
