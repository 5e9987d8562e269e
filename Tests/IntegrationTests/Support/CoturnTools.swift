import Foundation

/// coturn's client tools (Debian package `coturn`), the independent TURN clients our server is
/// measured against.
enum CoturnTools {
    static var available: Bool { Subprocess.isInstalled("turnutils_uclient") && Subprocess.isInstalled("turnutils_peer") }

    /// `turnutils_peer`, a UDP echo peer, on a free port of `address`.
    static func startPeer(address: String) async throws -> (Subprocess, Int) {
        let port = Int.random(in: 45_000...47_999)
        let peer = try Subprocess("turnutils_peer", ["-L", address, "-p", "\(port)"])
        peer.terminationGrace = 0.2
        try await Task.sleep(for: .milliseconds(300))
        guard peer.isRunning else { throw TestFailure("turnutils_peer did not start:\n\(peer.output)") }
        return (peer, port)
    }

    /// What one `turnutils_uclient` run reports.
    struct UClientReport {
        var sent: Int
        var received: Int
        var lost: Int
        var output: String
    }

    /// Runs `turnutils_uclient` to completion and reads its totals. coturn 4.6.1's uclient in
    /// `-T -S` mode now and then exits 0 having printed nothing at all (about one run in three
    /// on a loaded machine, never under strace); such a silent run is repeated once.
    static func uclient(_ arguments: [String], timeout: Double = 60) async throws -> UClientReport {
        do {
            return try await uclientOnce(arguments, timeout: timeout)
        } catch is SilentRun {
            return try await uclientOnce(arguments, timeout: timeout)
        }
    }

    private struct SilentRun: Error {}

    private static func uclientOnce(_ arguments: [String], timeout: Double) async throws -> UClientReport {
        let run = try Subprocess("turnutils_uclient", arguments)
        run.terminationGrace = 0.2
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
              let lost = last("Total lost packets [0-9]+") else {
            throw TestFailure("turnutils_uclient (exit \(status ?? -1)) printed no totals:\n\(text.suffix(3000))")
        }
        return UClientReport(sent: sent, received: received, lost: lost, output: text)
    }
}
