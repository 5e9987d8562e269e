import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// coturn's client tools (Debian package `coturn`), the independent TURN clients our server is
/// measured against.
enum CoturnTools {
    /// `turnutils_peer`, a UDP echo peer, on a free port of `address` (127.0.0.1 or ::1); returns
    /// once it echoes.
    static func startPeer(address: String) async throws -> (Subprocess, Int) {
        let port = try freeLoopbackPort()
        let peer = try Subprocess("turnutils_peer", ["-L", address, "-p", "\(port)"], terminationGrace: .milliseconds(200))
        try await waitUntil("turnutils_peer to echo on \(address) port \(port):\n\(peer.output)", interval: .milliseconds(100)) {
            guard peer.isRunning else { throw TestFailure("turnutils_peer exited:\n\(peer.output)") }
            return echoes(address: address, port: port)
        }
        return (peer, port)
    }

    /// Whether a datagram to `address`:`port` comes back within a moment (asked again until a
    /// deadline by the caller).
    private static func echoes(address: String, port: Int) -> Bool {
        let ipv6 = address.contains(":")
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var connected: Int32
        if ipv6 {
            var peer = sockaddr_in6()
            peer.sin6_family = sa_family_t(AF_INET6)
            peer.sin6_port = UInt16(port).bigEndian
            inet_pton(AF_INET6, address, &peer.sin6_addr)
            connected = withUnsafePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var peer = sockaddr_in()
            peer.sin_family = sa_family_t(AF_INET)
            peer.sin_port = UInt16(port).bigEndian
            peer.sin_addr.s_addr = inet_addr(address)
            connected = withUnsafePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard connected == 0 else { return false }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let probe = Array("meshnode echo probe".utf8)
        _ = probe.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return count == probe.count && Array(buffer.prefix(count)) == probe
    }

    /// What one `turnutils_uclient` run reports.
    struct UClientReport {
        var sent: Int
        var received: Int
        var lost: Int
        /// Application bytes uclient sent and received (its own `tot_send_bytes`,
        /// `tot_recv_bytes`): on an RFC 6062 relay, the byte stream's own measure of loss.
        var sentBytes: Int
        var receivedBytes: Int
        var output: String
    }

    /// Runs `turnutils_uclient` to completion and reads its totals. coturn 4.6.1's uclient in
    /// `-T -S` mode now and then exits 0 having printed nothing at all (about one run in three
    /// on a loaded machine, never under strace); such a silent run is repeated once.
    static func uclient(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> UClientReport {
        do {
            return try await uclientOnce(arguments, timeout: timeout)
        } catch is SilentRun {
            return try await uclientOnce(arguments, timeout: timeout)
        }
    }

    private struct SilentRun: Error {}

    private static func uclientOnce(_ arguments: [String], timeout: Duration) async throws -> UClientReport {
        let run = try Subprocess("turnutils_uclient", arguments, terminationGrace: .milliseconds(200))
        let status = await run.waitForExit(timeout: timeout)
        let text = run.output
        guard status != nil else { throw TestFailure("turnutils_uclient timed out:\n\(text.suffix(3000))") }
        if status == 0 && text.isEmpty { throw SilentRun() }
        func last(_ pattern: String) -> Int? {
            let matches = text.ranges(of: try! Regex(pattern))
            guard let range = matches.last else { return nil }
            return Int(text[range].split(whereSeparator: { !$0.isNumber }).last.map(String.init) ?? "")
        }
        guard let sent = last("tot_send_msgs=[0-9]+"), let received = last("tot_recv_msgs=[0-9]+"),
              let lost = last("Total lost packets [0-9]+"),
              let sentBytes = last("tot_send_bytes ~ [0-9]+"), let receivedBytes = last("tot_recv_bytes ~ [0-9]+") else {
            throw TestFailure("turnutils_uclient (exit \(status ?? -1)) printed no totals:\n\(text.suffix(3000))")
        }
        return UClientReport(sent: sent, received: received, lost: lost, sentBytes: sentBytes, receivedBytes: receivedBytes, output: text)
    }
}
