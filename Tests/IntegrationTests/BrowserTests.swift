import Foundation
import Testing
import TestSupport

/// Debian's chromium and chromedriver, and selenium for python3 (`make test-deps` installs them).
let chromiumAvailable: Bool = {
    let env = ProcessInfo.processInfo.environment
    return FileManager.default.isExecutableFile(atPath: env["MESHNODE_CHROMIUM"] ?? "/usr/bin/chromium")
        && FileManager.default.isExecutableFile(atPath: env["MESHNODE_CHROMEDRIVER"] ?? "/usr/bin/chromedriver")
        && Tools.pythonImports("selenium")
}()

/// The web page (web/) in headless Chromium, driven by `Tests/Browser/meshnode_browser.py`
/// through the page's `window.meshnodeTest` hook (docs/web.md). Each Chromium has its own
/// profile, so its own Ed25519 key; fake camera, microphone and screen stand in for devices.
@Suite("Web page in headless Chromium", .serialized, .timeLimit(.minutes(10)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct BrowserTests {
    static let driver = TestFiles.url("Tests/Browser/meshnode_browser.py").path
    /// Screenshots of the pages during calls, kept after the run.
    static let artifacts = ProcessInfo.processInfo.environment["MESHNODE_ARTIFACTS"]
        ?? TestFiles.url(".build/test-artifacts/browser").path

    /// Runs the driver and returns its `result` line; fails with the driver's whole output otherwise.
    /// `timeout` only bounds a driver that hangs: each of its waits has its own generous deadline.
    func runDriver(_ arguments: [String], url: String, timeout: Duration = .seconds(400),
                   during: ((Subprocess) async throws -> Void)? = nil) async throws -> [String: Any] {
        let driver = try Subprocess("python3", [Self.driver, "--url", url, "--artifacts", Self.artifacts] + arguments, name: "meshnode_browser.py")
        if let during { try await during(driver) }
        let status = await driver.waitForExit(timeout: timeout)
        let output = driver.output
        let resultLine = output.split(separator: "\n").last { $0.contains("\"event\": \"result\"") }
        guard status == 0, let resultLine,
              let result = try JSONSerialization.jsonObject(with: Data(resultLine.utf8)) as? [String: Any] else {
            throw TestFailure("browser driver exited \(status.map(String.init) ?? "(killed after \(timeout))"):\n\(output)")
        }
        print("browser driver: \(resultLine)")
        return result
    }

    @Test("two pages log in, see each other online, chat, make a video call with audio, reject a call, share a desktop and call through the node's TURN")
    func browserToBrowser() async throws {
        // Relaying to loopback is refused by default; the relay-only call needs it here.
        let node = try await MeshNodeServer(["--allow-peer", "127.0.0.0/8"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let result = try await runDriver(["scenario", "chat", "call", "reject", "desktop", "relay"], url: "http://127.0.0.1:\(node.httpPort)/")
        let scenarios = result["scenarios"] as? [String: [String: Any]] ?? [:]
        #expect(Set(scenarios.keys) == ["chat", "call", "reject", "desktop", "relay"])
        // framesDecoded grew on both sides between two stats samples (the driver checks audio too).
        let growth = scenarios["call"]?["framesDecodedGrowth"] as? [Int] ?? []
        #expect(growth.count == 2 && growth.allSatisfy { $0 > 0 }, "frames decoded did not grow: \(growth)")
        let shot = scenarios["call"]?["screenshot"] as? String ?? ""
        #expect(FileManager.default.fileExists(atPath: shot), "no screenshot at \(shot)")
        print("browser call screenshot: \(shot)")
    }

    @Test("over https with the node's self-signed certificate: the pages load, log in over wss, chat and call")
    func browserOverHTTPS() async throws {
        // The page is served over TLS only; a page from https may open wss: only (mixed content),
        // so the login and the chat prove the WebSocket runs over TLS on the same port.
        let node = try await MeshNodeServer(["--https"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let result = try await runDriver(["--ignore-certificate-errors", "scenario", "chat", "call"], url: "https://127.0.0.1:\(node.httpPort)/")
        let scenarios = result["scenarios"] as? [String: [String: Any]] ?? [:]
        #expect(Set(scenarios.keys) == ["chat", "call"])
        let growth = scenarios["call"]?["framesDecodedGrowth"] as? [Int] ?? []
        #expect(growth.count == 2 && growth.allSatisfy { $0 > 0 }, "frames decoded did not grow over https: \(growth)")
    }

    @Test("after a node restart on the same port the pages are back online, with presence and unsent chat")
    func reconnectAfterNodeRestart() async throws {
        let dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-data-\(UUID().uuidString)").path
        let first = try await MeshNodeServer(["--data-dir", dataDir], bind: ["127.0.0.1"])
        let port = first.httpPort
        var second: MeshNodeServer?
        defer {
            first.stop()
            second?.stop()
        }
        let result = try await runDriver(["scenario", "reconnect"], url: "http://127.0.0.1:\(port)/") { driver in
            try await driver.waitForOutput("restart-node")
            // A crash, not a goodbye: the pages learn it from the closed socket.
            first.process.terminate(SIGKILL)
            _ = await first.process.waitForExit()
            second = try await MeshNodeServer(["--data-dir", dataDir], bind: ["127.0.0.1"], httpPort: port)
        }
        let reconnect = try #require((result["scenarios"] as? [String: [String: Any]])?["reconnect"])
        #expect(reconnect["nodeUp"] as? Bool == true)
        print("browser reconnect: back online \(reconnect["nodeUpToOnlineMs"] ?? "-") ms after the node")
    }
}
