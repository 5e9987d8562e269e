import NIOCore
import Testing
@testable import MeshNode

/// `/healthz` answers 503 until every listener is up, then 200.
@Suite struct NodeHealthTests {
    @Test("503 before the listeners are up, 200 once TURN and HTTP both are, 503 again once stopping")
    func readiness() throws {
        let readiness = NodeReadiness { _ in }
        #expect(readiness.healthResponse().status == .serviceUnavailable)
        readiness.httpStarted(try SocketAddress(ipAddress: "127.0.0.1", port: 8080))
        #expect(readiness.healthResponse().status == .serviceUnavailable)
        readiness.turnStarted([])
        #expect(readiness.healthResponse().status == .ok)
        readiness.stopping()
        #expect(readiness.healthResponse().status == .serviceUnavailable)
    }
}
