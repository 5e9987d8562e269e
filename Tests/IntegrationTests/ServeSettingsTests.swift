import Foundation
import MeshNode
import Testing
import TestSupport

/// The settings of `meshnode serve` as an operator gives them: each entry of
/// `NodeSettings.all` is a flag that `serve --help` lists and that reaches its setting; a config
/// file fills what the flags leave and is refused, by key, when it is wrong.
@Suite(.timeLimit(.minutes(3))) struct ServeSettingsTests {
    @Test("serve --help lists every setting with its help text")
    func helpListsEverySetting() async throws {
        let run = try Subprocess(MeshNodeServer.binary, ["serve", "--help"])
        #expect(await run.waitForExit() == 0)
        // The help is wrapped to the terminal's width: compare with whitespace collapsed.
        let help = run.output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for setting in NodeSettings.all {
            let synopsis = setting.kind == .flag ? "--\(setting.name)" : "--\(setting.name) <\(setting.name)>"
            #expect(help.contains("\(synopsis) \(setting.help)"), "serve --help lacks \(synopsis):\n\(run.output)")
            if let shorthand = setting.shorthand {
                #expect(help.contains("--\(shorthand.name) \(shorthand.help)"), "serve --help lacks --\(shorthand.name)")
            }
        }
        #expect(help.contains("--config <config> YAML config file with the same keys as these flags."))
    }

    /// Every setting that takes a value refuses a negative number or an empty text, so a flag
    /// that reaches its setting makes `serve` fail with that setting's name before it listens.
    @Test("each setting's flag reaches the setting", arguments: NodeSettings.all.filter { $0.kind != .flag }.map(\.name))
    func flagReachesItsSetting(name: String) async throws {
        let setting = try #require(NodeSettings.setting(named: name))
        // `--name=-2` keeps a value that starts with a dash a value; an empty one is its own argument.
        let flag = switch setting.kind {
        case .integer: ["--\(name)=-2"]
        case .number: ["--\(name)=-1"]
        case .text, .list, .flag: ["--\(name)", ""]
        }
        let run = try Subprocess(MeshNodeServer.binary, ["serve"] + flag)
        #expect(await run.waitForExit() == 64, "\(run.output)")
        let error = try #require(run.output.split(separator: "\n").first { $0.contains("invalid setting '") }, "\(run.output)")
        // tls-key alone is refused as "'tls-cert': tls-cert and tls-key go together".
        #expect(error.contains(name), "\(error)")
    }

    @Test("--no-tls stands for tls-port -1 and wins over --tls-port; --rfc5780 is a flag")
    func shorthandAndFlag() async throws {
        // Settings are checked in the table's order, tls-port before http-port: with --no-tls in
        // effect the refused tls-port is replaced, and http-port is the first refusal.
        let run = try Subprocess(MeshNodeServer.binary, ["serve", "--rfc5780", "--no-tls", "--tls-port=-2", "--http-port=-2"])
        #expect(await run.waitForExit() == 64)
        #expect(run.output.contains("invalid setting 'http-port'"), "\(run.output)")
    }

    @Test("a list flag repeats: every value is kept")
    func listFlagRepeats() async throws {
        let run = try Subprocess(MeshNodeServer.binary, ["serve", "--bind", "127.0.0.1", "--bind", "example.com"])
        #expect(await run.waitForExit() == 64)
        #expect(run.output.contains("invalid setting 'bind': example.com is not a numeric IP address"), "\(run.output)")
    }

    @Test("a flag wins over the config file, which fills what the flags leave")
    func flagWinsOverFile() async throws {
        let directory = TemporaryDirectory("settings")
        let file = directory.path + "/meshnode.yaml"
        try "realm: file-realm\nuser: [\"bob:builder\"]\n".write(toFile: file, atomically: true, encoding: .utf8)
        let server = try await MeshNodeServer(["--config", file, "--realm", "flag-realm"])
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort, username: "bob", password: "builder")
        #expect(try client.allocate().isSuccess)
        #expect(client.realm == "flag-realm")
    }

    @Test("an unknown key or a malformed value in the config file fails with the key", arguments: [
        ("stun-prot: 3478", "stun-prot"), ("stun-port: many", "stun-port"), ("bind: 127.0.0.1", "bind"), ("rfc5780: maybe", "rfc5780"),
    ])
    func fileErrorsNameTheKey(yaml: String, key: String) async throws {
        let directory = TemporaryDirectory("settings")
        let file = directory.path + "/meshnode.yaml"
        try (yaml + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let run = try Subprocess(MeshNodeServer.binary, ["serve", "--config", file])
        #expect(await run.waitForExit() == 64)
        #expect(run.output.contains("invalid setting '\(key)'"), "\(run.output)")
    }
}
