import Foundation
import MeshNode
import Synchronization
import TestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A real `meshnode serve` on loopback with free ports, for tests.
final class MeshNodeServer: Sendable {
    let process: Subprocess
    let udpPort: Int
    let tlsPort: Int
    let httpPort: Int

    /// The built `meshnode` next to the test bundle (or `MESHNODE_BIN`).
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["MESHNODE_BIN"] { return path }
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var dir = bundle
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("meshnode").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return ".build/debug/meshnode"
    }

    /// `niceness`: started through `nice -n` (the process keeps its pid: nice execs it).
    init(_ extra: [String], bind: [String] = ["127.0.0.1", "::1"], httpPort: Int? = nil, niceness: Int? = nil) async throws {
        let http = httpPort ?? Self.nextHTTPPort()
        var arguments = ["serve", "--stun-port", "0", "--tls-port", "0", "--http-port", "\(http)", "--log-level", ProcessInfo.processInfo.environment["MESHNODE_TEST_LOG"] ?? "notice"]
        arguments += bind.flatMap { ["--bind", $0] }
        // A relay range of its own per server (see `nextRelayRange`), unless the test gives one.
        if !extra.contains("--relay-ports") {
            let range = Self.nextRelayRange(count: 200)
            arguments += ["--relay-ports", "\(range.lowerBound)-\(range.upperBound)"]
        }
        // A signaling store of its own unless the test gives one.
        if !extra.contains("--data-dir") {
            arguments += ["--data-dir", FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-data-\(UUID().uuidString)").path]
        }
        if let niceness {
            process = try Subprocess("/usr/bin/nice", ["-n", "\(niceness)", Self.binary] + arguments + extra, name: "meshnode serve")
        } else {
            process = try Subprocess(Self.binary, arguments + extra, name: "meshnode serve")
        }
        // The banner ends with the TURN URLs; wait until the first of them is complete.
        try await process.waitForOutput(describe: "its addresses") {
            $0.contains("meshnode is running.") && $0.range(of: "stun/turn: turns?:[^ ]+transport=[a-z]+\n", options: .regularExpression) != nil
        }
        let text = process.output
        func port(_ pattern: String) -> Int? {
            guard let range = text.range(of: pattern + "[0-9]+", options: .regularExpression) else { return nil }
            return Int(text[range].split(separator: ":").last!)
        }
        guard let udp = port("turn:127.0.0.1:") ?? port("turn:\\[::1\\]:") ?? port("turn:127\\.[0-9.]+:") else {
            throw TestFailure("meshnode serve printed no TURN address:\n\(text)")
        }
        udpPort = udp
        tlsPort = port("turns:127.0.0.1:") ?? port("turns:\\[::1\\]:") ?? port("turns:127\\.[0-9.]+:") ?? 0
        self.httpPort = http
    }

    func stop() { process.stop() }

    /// HTTP ports for test nodes: consecutive from a random start below the ephemeral range, so
    /// the nodes of one test run never pick the same port (random picks collided).
    private static let httpPorts = Mutex(Int.random(in: 20_000...26_000))

    static func nextHTTPPort() -> Int {
        httpPorts.withLock { port in
            port += 1
            return port
        }
    }

    /// Relay port ranges for test nodes, below Linux's ephemeral range (32768–60999): a port some
    /// other socket got from the kernel (a peer's host candidate, a browser) made an EVEN-PORT
    /// reservation fail with 508 now and then. Consecutive from a random start and wrapping
    /// round, so the servers of one test run do not share ports until 6,400 ports have been
    /// handed out (random ranges overlapped: CI once saw a two-port test range taken by another
    /// server's relay). The start is even, and so is every count asked for, so EVEN-PORT works.
    private static let relayPorts = Mutex(Int.random(in: 13_100...16_299) * 2)
    private static let relayPortSpan = 26_200..<32_600

    static func nextRelayRange(count: Int) -> ClosedRange<Int> {
        precondition(count > 0 && count % 2 == 0 && count <= relayPortSpan.count)
        return relayPorts.withLock { next in
            if next + count > relayPortSpan.upperBound { next = relayPortSpan.lowerBound }
            defer { next += count }
            return next...(next + count - 1)
        }
    }

    /// `GET /mesh` on `host` (an address the node binds).
    func meshStatus(host: String = "127.0.0.1") async throws -> MeshStatus {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://\(host):\(httpPort)/mesh")!)
        return try JSONDecoder().decode(MeshStatus.self, from: data)
    }

    /// The body of `/metrics`.
    func metrics() async throws -> String {
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(httpPort)/metrics")!)
        return String(decoding: data, as: UTF8.self)
    }

    /// The value of one series of `/metrics`, e.g. `meshnode_turn_dropped_packets_total{reason="bandwidth"}`;
    /// nil while the node does not export it.
    func metric(_ series: String) async throws -> Double? {
        try await metrics().split(separator: "\n").lazy.compactMap { line -> Double? in
            guard line.hasPrefix(series + " ") else { return nil }
            return Double(line.dropFirst(series.count + 1).split(separator: " ").first ?? "")
        }.first
    }

    /// Waits until a series of `/metrics` is above zero: the TURN server flushes its relay
    /// counters into the metrics about once a second.
    func waitForMetric(_ series: String) async throws {
        try await waitUntil("\(series) above zero", interval: .milliseconds(100)) {
            let value = try await metric(series)
            return (value ?? 0) > 0
        }
    }
}
