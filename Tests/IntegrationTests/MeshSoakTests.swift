import Foundation
import MeshNode
import Signaling
import Testing
import TestSupport

/// Issue 15, "Tests": a link churning node records for 60 s leaves the node's memory within
/// 10% of where it started. Every table the records reach is bounded: the directory (per link
/// and in all), records waiting for proof, dial-back outcomes, log limits.
@Suite(.serialized, .timeLimit(.minutes(3))) struct MeshSoakTests {
    /// Resident memory of a process in KiB (`VmRSS` of /proc/PID/status).
    static func residentKiB(_ pid: pid_t) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else {
            throw TestFailure("no VmRSS in /proc/\(pid)/status")
        }
        return kib
    }

    @Test func aLinkChurningRecordsFor60SecondsLeavesMemoryFlat() async throws {
        let eKey = try NodeKeyFile()
        let e = try await MeshNodeServer(["--bind", "127.0.0.1", "--node-key", eKey.path], bind: [])
        defer { e.stop() }
        let b = try await MeshNodeServer(["--bind", "127.0.0.1", "--gossip-interval", "1"], bind: [])
        defer { b.stop() }
        let link = RawSignalingSocket(url: b.signalingURL)
        defer { link.close() }
        let answer = try await link.link(as: e.nodeAddress, eKey.identity, to: b.nodeAddress)
        guard case .linked(let linked) = answer.payload, linked.proven == true else { throw TestFailure("expected a proven link, got \(answer)") }

        // Fresh keys for addresses nobody answers at, refreshes of a few, leaving records, E's
        // own record: 16 records a frame, 40 frames a second (the link's budget is 1000).
        var index = 0
        let regulars = (0..<16).map { _ in Identity.generate() }
        func churn(for duration: Duration) async throws {
            let end = ContinuousClock.now + duration
            while ContinuousClock.now < end {
                var records: [SignedNodeRecord] = []
                for _ in 0..<12 {
                    index += 1
                    let key = Identity.generate()
                    records.append(MeshTrustTests.record(key, node: "127.0.0.9:\(1 + index % 1000)", udpPort: 9))
                }
                let regular = regulars[index % regulars.count]
                let seq = Int(Date().timeIntervalSince1970 * 1000) + index
                records.append(MeshTrustTests.record(regular, node: "127.0.0.8:\(1 + index % 16)", udpPort: 9, seq: seq))
                var bye = try JSONDecoder().decode(NodeRecord.self, from: Data(MeshTrustTests.record(regular, node: "127.0.0.8:\(1 + index % 16)", udpPort: 9, seq: seq + 1).payload.utf8))
                bye.leaving = true
                records.append(bye.signed(by: regular))
                records.append(MeshTrustTests.record(eKey.identity, node: e.nodeAddress, udpPort: e.udpPort, seq: seq))
                records.append(SignedNodeRecord(payload: "{\"node\":\"garbage \(index)\"}", sig: "AAAA"))
                link.send(SignalingMessage(id: "m\(index)", from: "@node", to: "@node", payload: .mesh(MeshBody(records: records))))
                try await Task.sleep(for: .milliseconds(25))
            }
        }
        // Warm up (allocator pools, caches of the first dial-backs), then measure.
        try await churn(for: .seconds(10))
        let before = try Self.residentKiB(b.process.pid)
        try await churn(for: .seconds(60))
        let after = try Self.residentKiB(b.process.pid)
        let view = try await b.meshStatus()
        print("soak: \(index) records over a link in 70 s; meshnode serve RSS \(before) KiB after warm-up, \(after) KiB after 60 s (\(String(format: "%+.1f", Double(after - before) / Double(before) * 100)) %); unproven held \(view.unproven ?? -1)")
        #expect(Double(after) <= Double(before) * 1.10, "RSS grew from \(before) to \(after) KiB")
        #expect((view.unproven ?? 0) <= 8)
        #expect(b.process.isRunning)
        // The link still works: E is known.
        #expect(view.nodes.contains { $0.node == e.nodeAddress })
    }
}
