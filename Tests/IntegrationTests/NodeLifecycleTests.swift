import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import TestSupport
import Codecs

/// `meshnode serve` as an operator sees it: addresses printed, page and metrics served,
/// clean exit on SIGTERM, clear errors for bad settings.
@Suite struct NodeLifecycleTests {
    @Test("prints its addresses, serves the page and /metrics, and exits 0 on SIGTERM")
    func lifecycle() async throws {
        let server = try await MeshNodeServer(["--user", "alice:wonderland"])
        let output = server.process.output
        #expect(output.contains("web page: http://127.0.0.1:\(server.httpPort)/"))
        #expect(output.contains("turns:127.0.0.1:"))
        let (status, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(server.httpPort)/status")!)
        #expect(String(decoding: status, as: UTF8.self).contains("turn:127.0.0.1:\(server.udpPort)?transport=udp"))
        let (page, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(server.httpPort)/")!)
        #expect(String(decoding: page, as: UTF8.self).contains("<script type=\"module\" src=\"app.js\">"))
        #expect((response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Content-Type") == "text/html; charset=utf-8")
        let metrics = try await server.metrics()
        #expect(metrics.contains("meshnode_turn_allocations_active"))
        server.process.terminate()
        let exit = await server.process.waitForExit()
        #expect(exit == 0, "exit status \(String(describing: exit)):\n\(server.process.output)")
    }

    @Test("a bad setting fails fast with the key and the reason")
    func badSetting() async throws {
        let run = try Subprocess(MeshNodeServer.binary, ["serve", "--relay-ports", "70000-80000"])
        let status = await run.waitForExit()
        #expect(status != nil && status != 0)
        #expect(run.output.contains("relay-ports"))
    }

    @Test("a YAML config file sets the same keys as the flags")
    func configFile() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-\(UUID().uuidString).yaml")
        try "realm: yaml-realm\nuser: [\"bob:builder\"]\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let server = try await MeshNodeServer(["--config", file.path])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort, username: "bob", password: "builder")
        #expect(try client.allocate().isSuccess)
        #expect(client.realm == "yaml-realm")
    }
}
