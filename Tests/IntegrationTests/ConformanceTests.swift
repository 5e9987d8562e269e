import Foundation
import Testing
import TestSupport

/// The protocol conformance suite (Tests/Conformance/conformance.py, issue 18): a client
/// written from docs/protocol.md alone, run against a real `meshnode serve`. Every rule it
/// checks prints PASS or FAIL; one FAIL fails this test.
@Suite(.serialized, .timeLimit(.minutes(2))) struct ConformanceTests {
    @Test("every rule of docs/protocol.md a client can observe holds for a real node")
    func conformanceSuitePasses() async throws {
        try #require(Subprocess.isInstalled("python3"), "the conformance suite needs python3 (with cryptography or PyNaCl)")
        let node = try await MeshNodeServer([])
        defer { node.stop() }
        let script = TestFiles.url("Tests/Conformance/conformance.py").path
        let started = ContinuousClock.now
        let (status, output) = try await Subprocess.run("/usr/bin/env", ["python3", script, "--node", "ws://127.0.0.1:\(node.httpPort)/ws"],
                                                        timeout: .seconds(90))
        let failures = output.split(separator: "\n").filter { $0.hasPrefix("FAIL") }
        let passes = output.split(separator: "\n").filter { $0.hasPrefix("PASS") }
        print("conformance: \(passes.count) passed, \(failures.count) failed in \(ContinuousClock.now - started)")
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        #expect(passes.count >= 90, "too few checks ran:\n\(output)")
        #expect(status == 0, "conformance.py exited \(status.map(String.init) ?? "by its timeout"):\n\(output)\nnode:\n\(node.process.output.suffix(3000))")
    }
}
