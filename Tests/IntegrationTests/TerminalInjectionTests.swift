import Foundation
import Signaling
import Testing
import TestSupport

/// `meshnode join` and `meshnode status` print text that peers and other nodes chose: control
/// characters in it are shown escaped, never sent to the terminal (issue 15, finding 9).
@Suite(.serialized, .timeLimit(.minutes(2))) struct TerminalInjectionTests {
    /// Retitles the window, clears the screen and hides what follows behind a bidi override.
    static let payload = "hello\u{1B}]0;pwned\u{07}\u{1B}[2J\u{9B}31m\u{202E}gnp.exe\r\nfake line"

    static func expectNoControls(_ output: String, _ what: String) {
        let bad = output.unicodeScalars.filter { $0 != "\n" && ($0.value < 0x20 || (0x7F...0x9F).contains($0.value) || $0 == "\u{202E}") }
        #expect(bad.isEmpty, "\(what) printed control characters \(bad.map { String($0.value, radix: 16) })")
    }

    @Test("chat and call events from a peer print with their control characters escaped (text and --json)")
    func joinEscapesPeerText() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let home = TemporaryDirectory("terminal")
        let keygen = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", home.path + "/bob.id"])
        guard await keygen.waitForExit() == 0 else { throw TestFailure("keygen failed: \(keygen.output)") }
        var joins: [Subprocess] = []
        for (index, mode) in [[], ["--json"]].enumerated() {
            let name = "bob\(index)"
            let join = try Subprocess(MeshNodeServer.binary, ["join", "--node", node.signalingURL, "--name", name, "--identity", home.path + "/bob.id",
                                                              "--known-peers", home.path + "/pins\(index).json", "--accept", "never"] + mode, name: "join \(name)")
            joins.append(join)
            try await join.waitForOutput("connected")
        }
        defer { for join in joins { join.stop() } }
        let mallory = SignalingClient(url: node.signalingURL, name: "mallory", identity: .generate(), requestTimeout: .seconds(20))
        try await mallory.connect()
        for index in joins.indices {
            try await mallory.send(text: Self.payload, to: "bob\(index)")
            try await mallory.callSetup(.hangup, to: "bob\(index)", call: "no-such-call", reason: Self.payload)
        }
        await mallory.close()
        try await joins[0].waitForOutput("fake line")
        try await joins[0].waitForOutput("refused")
        try await joins[1].waitForOutput("fake line")
        try await joins[1].waitForOutput("refused")
        Self.expectNoControls(joins[0].output, "join")
        Self.expectNoControls(joins[1].output, "join --json")
        #expect(joins[0].output.contains(#"hello\u{1b}]0;pwned\u{7}"#), "\(joins[0].output)")
        // JSON keeps the exact text: a JSON reader decodes the escapes back.
        let chatLine = try #require(joins[1].output.split(separator: "\n").first { $0.contains("\"event\":\"chat\"") })
        let object = try JSONSerialization.jsonObject(with: Data(chatLine.utf8)) as? [String: Any]
        #expect(object?["text"] as? String == Self.payload)
    }

    @Test("status prints node records with their control characters escaped")
    func statusEscapesNodeRecords() async throws {
        let directory = TemporaryDirectory("fake-mesh")
        let version = "1.0\u{1B}]0;pwned\u{07}\u{1B}[2J"
        let record: [String: Any] = [
            "node": "127.0.0.1:1\u{1B}[31m", "key": "k", "local": false, "reachability": "public", "relay": true, "load": 0, "capacity": 1,
            "version": version, "linked": false, "links": [], "stun": [], "turn": [],
        ]
        let status: [String: Any] = [
            "node": "127.0.0.1:2", "key": "k", "reachability": "public\u{9B}2J", "relay": false, "checkedBy": ["x\u{1B}[2J"],
            "nodes": [record], "links": ["l\u{1B}[2J"], "relays": [], "time": 0,
        ]
        try JSONSerialization.data(withJSONObject: status).write(to: URL(fileURLWithPath: directory.path + "/mesh"))
        let port = try freeLoopbackPort()
        let server = try Subprocess("python3", ["-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", directory.path], name: "http.server")
        defer { server.stop() }
        try await waitUntil("the fake node's HTTP server", interval: .milliseconds(50)) { acceptsTCP(port: port) }
        let run = try Subprocess(MeshNodeServer.binary, ["status", "--node", "http://127.0.0.1:\(port)"], name: "status")
        #expect(await run.waitForExit() == 0, "\(run.output)")
        Self.expectNoControls(run.output, "status")
        #expect(run.output.contains(#"1.0\u{1b}]0;pwned\u{7}\u{1b}[2J"#), "\(run.output)")
        // --json (pretty-printed) stays valid JSON with the exact text.
        let json = try Subprocess(MeshNodeServer.binary, ["status", "--json", "--node", "http://127.0.0.1:\(port)"], name: "status --json")
        #expect(await json.waitForExit() == 0, "\(json.output)")
        Self.expectNoControls(json.output, "status --json")
        let decoded = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(decoded?["reachability"] as? String == "public\u{9B}2J", "\(json.output)")
        #expect((decoded?["nodes"] as? [[String: Any]])?.first?["version"] as? String == version)
    }
}
