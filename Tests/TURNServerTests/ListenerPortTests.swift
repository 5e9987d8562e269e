import Glibc
import Testing
@testable import TURNServer

/// The UDP listeners use SO_REUSEPORT (one per event loop, and the relay engine's client
/// sockets share the port); that must not let a node quietly share a port another program
/// already serves.
@Suite struct ListenerPortTests {
    /// A UDP socket on 127.0.0.1 with SO_REUSEPORT, as another relay on this host would hold it;
    /// returns the descriptor and its port.
    static func holdReusablePort() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        try #require(fd >= 0)
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test("a UDP port another program holds with SO_REUSEPORT is refused at start, not shared")
    func heldPortIsRefused() async throws {
        let held = try Self.holdReusablePort()
        defer { close(held.fd) }
        var configuration = TURNServerConfiguration()
        configuration.bindAddresses = ["127.0.0.1"]
        configuration.port = held.port
        configuration.tlsPort = nil
        let server = TURNServer(configuration: configuration)
        await #expect(throws: TURNServerError.self) { try await server.start() }
        await server.stop()
    }
}
