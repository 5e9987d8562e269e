import Foundation
import Testing
import TestSupport
@testable import Signaling
import STUN

/// Issue 15, "caps and idle timeouts on every kind of connection", at the hub: a connection that
/// pings but never logs in no longer holds its slot for ever; one that logged in stays.
@Suite struct HubConnectionTrustTests {
    @Test func aConnectionThatNeverLogsInIsClosedAfterTheLoginTimeout() async throws {
        let clock = ManualClock()
        let fixture = try await HubFixture(clock: clock) { $0.loginTimeout = .seconds(30) }
        defer { Task { await fixture.close() } }
        let idler = await fixture.peer()
        let alice = await fixture.peer()
        _ = try await alice.login("alice", .generate())
        // Both keep pinging, well within the heartbeat: only the login is missing.
        for step in 1...4 {
            clock.advance(by: .seconds(10))
            for peer in [idler, alice] {
                await peer.send(.ping, id: "p\(step)")
                _ = try await peer.next { $0.payload == .pong ? true : nil }
            }
            await fixture.hub.sweep(now: clock.now)
        }
        // The hub closed it; the test connection's reader sees the end a moment later.
        try await waitUntil("the connection without a login to be closed (40 s)") { await idler.isClosed }
        #expect(!(await alice.isClosed))
        await alice.send(.ping, id: "still")
        _ = try await alice.next { $0.payload == .pong ? true : nil }
    }

    @Test func sourcesCountByAddressAndIPv6ByTheirSlash64() {
        let limit = SourceLimit(maximum: 2)
        func acquire(_ text: String) -> Bool { limit.acquire(IPAddress(string: text)!) }
        func release(_ text: String) { limit.release(IPAddress(string: text)!) }
        #expect(acquire("192.0.2.7") && acquire("192.0.2.7"))
        #expect(!acquire("192.0.2.7"), "a third connection from one address")
        #expect(acquire("192.0.2.8"), "another address has its own share")
        // One subscriber's /64, written in different forms.
        #expect(acquire("2001:db8:1:2::1") && acquire("2001:DB8:1:2:abcd::9"))
        #expect(!acquire("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        #expect(acquire("2001:db8:1:3::1"), "the next /64 is another source")
        release("192.0.2.7")
        #expect(acquire("192.0.2.7"), "a closed connection frees its place")
        for _ in 0..<2 { release("192.0.2.7") }
        #expect(limit.held(by: IPAddress(string: "192.0.2.7")!) == 0)
    }
}
