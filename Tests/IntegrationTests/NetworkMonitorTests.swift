import Foundation
import Testing
import TestSupport

/// The rtnetlink monitor against the real kernel, through `meshnode net-watch` in a network
/// namespace of its own (so no interface of the host is touched): an address added and removed
/// on a veth interface is reported within the burst window, and a process that forges a
/// netlink message to the monitor's socket is ignored (docs/calls.md "This side's network
/// changed").
@Suite("Network monitor (rtnetlink)", .serialized, .timeLimit(.minutes(2)),
       .enabled(if: getuid() == 0 && Tools.installed("ip", "python3"), "needs root (network namespaces), iproute2 and python3"))
struct NetworkMonitorTests {
    /// A namespace named outside the testnet's `mn-` prefix, so that `testnet/down` leaves it alone.
    let namespace = "nwtest-\(getpid())"

    func ip(_ arguments: String...) async throws {
        let result = try await Subprocess.run("/usr/sbin/ip", Array(arguments))
        #expect(result.status == 0, "ip \(arguments.joined(separator: " ")): \(result.output)")
    }

    @Test("an address added and removed is reported once per burst; a forged netlink message from another process is not")
    func addressChangesAndAForgery() async throws {
        try await ip("netns", "add", namespace)
        defer { _ = try? Subprocess(Subprocess.resolve("ip"), ["netns", "delete", namespace]).waitUntilExit() }
        let watch = try Subprocess("/usr/sbin/ip", ["netns", "exec", namespace, MeshNodeServer.binary, "net-watch", "--json", "--seconds", "60"],
                                   name: "net-watch")
        defer { watch.stop() }
        try await watch.waitForOutput(#""event":"watching""#)
        let port = try #require(Self.portID(in: watch.output), "no port id in \(watch.output)")

        // A burst: interface, link up, address — one change. (A veth pair inside the namespace:
        // this kernel has no dummy interfaces.)
        try await ip("-n", namespace, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        try await ip("-n", namespace, "link", "set", "d0", "up")
        let added = ContinuousClock.now
        try await ip("-n", namespace, "addr", "add", "192.0.2.7/24", "dev", "d0")
        try await watch.waitForOutput(#""added":["192.0.2.7"]"#)
        print("net-watch: the added address reported after \(ContinuousClock.now - added)")

        // The attacker: another process in the namespace sends an RTM_DELADDR for that address
        // straight to the monitor's socket. The kernel delivers it (sendto succeeds); the
        // monitor must drop it, since only the kernel (nl_pid 0) speaks for the addresses.
        let forged = try await Subprocess.run("/usr/sbin/ip", ["netns", "exec", namespace, "python3", "-c", Self.forgery, String(port)])
        #expect(forged.status == 0 && forged.output.contains("delivered"), "the forged message did not reach the socket: \(forged.output)")
        try await Task.sleep(for: .milliseconds(800))
        #expect(!watch.output.contains(#""removed":["192.0.2.7"]"#), "a forged netlink message was taken: \(watch.output)")

        // The real removal.
        let removed = ContinuousClock.now
        try await ip("-n", namespace, "addr", "del", "192.0.2.7/24", "dev", "d0")
        try await watch.waitForOutput(#""removed":["192.0.2.7"]"#)
        let elapsed = ContinuousClock.now - removed
        print("net-watch: the removed address reported after \(elapsed)")
        #expect(elapsed < .seconds(2))
        let changes = watch.output.split(separator: "\n").filter { $0.contains(#""event":"changed""#) }
        #expect(changes.count == 2, "one change per burst: \(changes)")
    }

    static func portID(in output: String) -> UInt32? {
        guard let range = output.range(of: #""portID":"#) else { return nil }
        return UInt32(output[range.upperBound...].prefix { $0.isNumber })
    }

    /// An RTM_DELADDR for 192.0.2.7/24 (nlmsghdr, ifaddrmsg, IFA_LOCAL), sent by a user
    /// process to the port id given as the argument.
    static let forgery = """
        import socket, struct, sys
        address = socket.inet_aton("192.0.2.7")
        payload = struct.pack("=BBBBI", 2, 24, 0, 0, 2) + struct.pack("=HH", 8, 2) + address
        message = struct.pack("=IHHII", 16 + len(payload), 21, 0, 1, 0) + payload
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        s.bind((0, 0))
        s.sendto(message, (int(sys.argv[1]), 0))
        print("delivered")
        """
}
