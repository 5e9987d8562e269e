import Foundation
import Testing
import TestSupport

/// Cuts one CLI peer's ICE path on loopback: its selected host port, dropped both ways by an
/// nftables table of the test's own (root and `nft`), so that the peer's ICE restart is what
/// brings media back (CallCLITests, ForwardedRestartTests).
enum LoopbackPathCut {
    /// The local port of `peer`'s first selected host pair on 127.0.0.1 (its `selected pair` line).
    static func selectedPort(of peer: Subprocess) async throws -> Int {
        try await peer.waitForOutput("selected pair host 127.0.0.1:")
        let line = peer.output.components(separatedBy: "selected pair host 127.0.0.1:")[1]
        return try #require(Int(line.prefix { $0.isNumber }))
    }

    /// Drops UDP to and from `port` on `lo` for `outage`, in table `table` (deleted afterwards).
    static func drop(port: Int, for outage: Duration, table: String) async throws {
        func nft(_ arguments: [String]) async -> Int32? {
            (try? await Subprocess.run("nft", arguments))?.status ?? nil
        }
        #expect(await nft(["add", "table", "inet", table]) == 0)
        _ = await nft(["add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }"])
        _ = await nft(["add", "rule", "inet", table, "out", "oif", "lo", "udp", "dport", "\(port)", "drop"])
        _ = await nft(["add", "rule", "inet", table, "out", "oif", "lo", "udp", "sport", "\(port)", "drop"])
        try await Task.sleep(for: outage)
        _ = await nft(["delete", "table", "inet", table])
    }
}
