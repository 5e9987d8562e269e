import Foundation
import Testing
import TestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `make install` as docs/deploy.md describes it, with the debug build (BINARY=…): the installed
/// binary, run from a directory with no source tree, serves the page it carries; the unit passes
/// `systemd-analyze verify`; `--check-config` checks without listening; `/healthz` is public.
@Suite(.serialized, .timeLimit(.minutes(3))) struct InstallTests {
    /// The repository: three levels above this file.
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// `make install` into `destination` (DESTDIR) with the given extra variables.
    func install(_ variables: [String]) async throws -> String {
        let run = try await Subprocess.run("make", ["-s", "-C", Self.repository, "install", "BINARY=\(MeshNodeServer.binary)"] + variables,
                                           timeout: .seconds(60))
        #expect(run.status == 0, "make install failed:\n\(run.output)")
        return run.output
    }

    @Test("make install DESTDIR=…: binary, hardened unit, example config from the settings table")
    func installsFiles() async throws {
        let root = TemporaryDirectory("install")
        _ = try await install(["DESTDIR=\(root.path)", "PREFIX=/usr/local"])
        let binary = root.path + "/usr/local/bin/meshnode"
        #expect(FileManager.default.isExecutableFile(atPath: binary))
        let unit = try String(contentsOfFile: root.path + "/usr/local/lib/systemd/system/meshnode.service", encoding: .utf8)
        for line in ["ExecStart=/usr/local/bin/meshnode serve --config /etc/meshnode/meshnode.yaml", "User=meshnode",
                     "StateDirectory=meshnode", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                     "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes", "Restart=on-failure"] {
            #expect(unit.split(separator: "\n").contains { $0 == line }, "the unit lacks \(line)")
        }
        #expect(!unit.contains("@"), "a placeholder was left in the unit")
        let config = try String(contentsOfFile: root.path + "/etc/meshnode/meshnode.yaml", encoding: .utf8)
        let printed = try await Subprocess.run(binary, ["serve", "--print-example-config"])
        #expect(printed.status == 0)
        #expect(config == printed.output)
        #expect(config.contains("#stun-port: 3478"))
        // The installed config, as it is, is a valid config that sets nothing.
        let check = try await Subprocess.run(binary, ["serve", "--check-config", "--config", root.path + "/etc/meshnode/meshnode.yaml"])
        #expect(check.status == 0, "\(check.output)")

        // A second install keeps the operator's config.
        try "stun-port: 3479\n".write(toFile: root.path + "/etc/meshnode/meshnode.yaml", atomically: true, encoding: .utf8)
        _ = try await install(["DESTDIR=\(root.path)", "PREFIX=/usr/local"])
        #expect(try String(contentsOfFile: root.path + "/etc/meshnode/meshnode.yaml", encoding: .utf8) == "stun-port: 3479\n")
    }

    @Test("the unit passes systemd-analyze verify")
    func unitVerifies() async throws {
        guard Subprocess.isInstalled("systemd-analyze") else {
            print("skipped: systemd-analyze is not installed")
            return
        }
        // Installed with real paths (no DESTDIR), so that ExecStart names an executable that exists.
        let root = TemporaryDirectory("install-verify")
        _ = try await install(["PREFIX=\(root.path)/usr", "SYSCONFDIR=\(root.path)/etc"])
        let run = try await Subprocess.run("systemd-analyze", ["verify", root.path + "/usr/lib/systemd/system/meshnode.service"])
        #expect(run.status == 0, "systemd-analyze verify:\n\(run.output)")
        #expect(!run.output.contains("meshnode.service:"), "systemd-analyze verify complains:\n\(run.output)")
    }

    @Test("the installed binary, run elsewhere with only $HOME, serves the embedded page and /healthz")
    func installedBinaryServesPage() async throws {
        let root = TemporaryDirectory("install-run")
        _ = try await install(["DESTDIR=\(root.path)", "PREFIX=/usr"])
        let elsewhere = TemporaryDirectory("elsewhere")
        let home = elsewhere.path + "/home"
        let port = MeshNodeServer.nextHTTPPort()
        // No --data-dir and no XDG variables: the store and identity go under $HOME, which is not
        // the passwd entry's home.
        let script = "cd \(elsewhere.path) && exec env -u XDG_DATA_HOME -u XDG_CONFIG_HOME -u STATE_DIRECTORY HOME=\(home) "
            + "\(root.path)/usr/bin/meshnode serve --bind 127.0.0.1 --stun-port 0 --tls-port 0 --http-port \(port) "
            + "--status-access off --log-level notice"
        let node = try Subprocess("/bin/sh", ["-c", script], name: "installed meshnode")
        defer { node.stop() }
        try await node.waitForOutput("meshnode is running.")
        #expect(FileManager.default.fileExists(atPath: home + "/.local/share/meshnode/node-identity"), "\(node.output)")

        for (path, file, type) in [("/", "index.html", "text/html; charset=utf-8"), ("/app.js", "app.js", "text/javascript; charset=utf-8"),
                                   ("/style.css", "style.css", "text/css; charset=utf-8")] {
            let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            let http = try #require(response as? HTTPURLResponse)
            #expect(http.statusCode == 200)
            #expect(http.value(forHTTPHeaderField: "Content-Type") == type)
            #expect(http.value(forHTTPHeaderField: "Content-Security-Policy")?.contains("script-src 'self'") == true)
            #expect(http.value(forHTTPHeaderField: "X-Content-Type-Options") == "nosniff")
            #expect(data == FileManager.default.contents(atPath: Self.repository + "/web/" + file), "\(path) is not web/\(file)")
        }
        // /healthz is public: with status-access off, /status is gone but /healthz answers.
        let (health, healthResponse) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/healthz")!)
        #expect((healthResponse as? HTTPURLResponse)?.statusCode == 200)
        #expect(String(decoding: health, as: UTF8.self) == "ok\n")
        let (_, statusResponse) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/status")!)
        #expect((statusResponse as? HTTPURLResponse)?.statusCode == 404)
    }

    @Test("--check-config prints every setting with its origin and opens no listener")
    func checkConfigGood() async throws {
        // A running node holds these ports: a check that tried to listen would fail.
        let server = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { server.stop() }
        let directory = TemporaryDirectory("check-config")
        let file = directory.path + "/meshnode.yaml"
        try "stun-port: \(server.udpPort)\nrealm: from-file\n".write(toFile: file, atomically: true, encoding: .utf8)
        let run = try await Subprocess.run("/usr/bin/env", ["-u", "XDG_DATA_HOME", "-u", "STATE_DIRECTORY", "HOME=\(directory.path)",
                                                            MeshNodeServer.binary, "serve", "--check-config", "--config", file,
                                                            "--http-port", "\(server.httpPort)", "--bind", "127.0.0.1"])
        #expect(run.status == 0, "\(run.output)")
        let rows = run.output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(rows.contains("stun-port \(server.udpPort) (file)"), "\(run.output)")
        #expect(rows.contains("realm from-file (file)"))
        #expect(rows.contains("http-port \(server.httpPort) (flag)"))
        #expect(rows.contains("bind [127.0.0.1] (flag)"))
        #expect(rows.contains("data-dir \(directory.path)/.local/share/meshnode (default)"), "\(run.output)")
        #expect(rows.contains("log-level info (default)"))
        for key in ["heartbeat", "store-kept-ids", "tls-cert", "allow-origin"] {
            #expect(rows.contains { $0.hasPrefix(key + " ") }, "no row for \(key)")
        }
    }

    @Test("--check-config with a bad config exits 64 naming the key and the reason", arguments: [
        ("stun-port: 70000", "invalid setting 'stun-port': 70000 is not a port"),
        ("stun-prot: 3478", "invalid setting 'stun-prot'"),
        ("relay-ports: 10-5", "invalid setting 'relay-ports': '10-5' is not LOW-HIGH"),
    ])
    func checkConfigBad(yaml: String, error: String) async throws {
        let directory = TemporaryDirectory("check-config")
        let file = directory.path + "/meshnode.yaml"
        try (yaml + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let run = try await Subprocess.run(MeshNodeServer.binary, ["serve", "--check-config", "--config", file])
        #expect(run.status == 64)
        #expect(run.output.contains(error), "\(run.output)")
        #expect(!run.output.contains("settings are valid"))
    }
}
