import ICE
import Testing
@testable import MeshNode
import STUN

@Suite struct NodeSettingsTests {
    @Test("YAML keys are the flag names, and flags win over the file")
    func flagsWin() throws {
        let file = try NodeSettings.parse(yaml: """
            bind: [0.0.0.0]
            stun-port: 3479
            user: ["alice:one", "bob:two"]
            allow-peer: [10.0.0.0/8]
            relay-ports: 50000-50100
            max-bps: 1000000
            """)
        var flags = NodeSettings()
        flags.stunPort = 4000
        let configuration = try NodeConfiguration(flags.overriding(file))
        #expect(configuration.turn.port == 4000)
        #expect(configuration.turn.bindAddresses == ["0.0.0.0"])
        #expect(configuration.turn.users == ["alice": "one", "bob": "two"])
        #expect(configuration.turn.relayPorts == 50_000...50_100)
        #expect(configuration.turn.maxBitsPerSecond == 1_000_000)
        #expect(configuration.turn.peerPolicy.refusal(for: IPAddress(string: "10.1.2.3")!) == nil)
    }

    @Test("defaults are a node on localhost")
    func defaults() throws {
        let configuration = try NodeConfiguration(NodeSettings())
        #expect(configuration.turn.bindAddresses.first == "127.0.0.1")
        #expect(configuration.turn.bindAddresses.allSatisfy { ["127.0.0.1", "::1"].contains($0) })
        #expect(configuration.turn.port == 3478)
        #expect(configuration.turn.tlsPort == 5349)
        #expect(configuration.httpPort == 8080)
        #expect(!configuration.turn.enableRFC5780)
    }

    @Test("bad values name their key", arguments: [
        ("relay-ports: 10-5", "relay-ports"), ("user: [nocolon]", "user"), ("allow-peer: [10.0.0.0/40]", "allow-peer"),
        ("bind: [example.com]", "bind"), ("log-level: loud", "log-level"), ("stun-port: 70000", "stun-port"),
        ("no-such-key: 1", "no-such-key"), ("max-bps: 5", "max-bps"), ("tls-port: -2", "tls-port"), ("threads: 65", "threads"),
        ("heartbeat: 0.05", "heartbeat"), ("link: [nowhere]", "link"), ("web-root: /nonexistent/web", "web-root"),
        ("tls-key: key.pem", "tls-cert"),
    ])
    func rejects(yaml: String, key: String) throws {
        let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(NodeSettings.parse(yaml: yaml)) }
        #expect(error?.key == key)
        #expect(error?.code == .invalidSetting)
    }

    @Test("a refusal says what the value must be, as the user would write it")
    func refusalReason() throws {
        let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(NodeSettings.parse(yaml: "heartbeat: 0")) }
        #expect(error?.description == "invalid setting 'heartbeat': must be 0.1 to 3600 seconds")
    }

    @Test("tls-port -1 in a file turns TLS off, as --no-tls does")
    func tlsOff() throws {
        let configuration = try NodeConfiguration(NodeSettings.parse(yaml: "tls-port: -1"))
        #expect(configuration.turn.tlsPort == nil)
    }

    // MARK: The table of settings

    /// A YAML value for a setting of `kind` and the value it reads as; `variant` makes another.
    static func sample(_ kind: NodeSetting.Kind, variant: Int = 1) -> (yaml: String, value: NodeSetting.Value) {
        switch kind {
        case .integer: ("\(variant)", .integer(variant))
        case .number: ("\(variant).5", .number(Double(variant) + 0.5))
        case .text: ("text-\(variant)", .text("text-\(variant)"))
        case .list: ("[a\(variant), b\(variant)]", .list(["a\(variant)", "b\(variant)"]))
        case .flag: (variant == 1 ? "true" : "false", .flag(variant == 1))
        }
    }

    @Test("every field of NodeSettings is declared once in NodeSettings.all")
    func tableCoversEveryField() {
        #expect(Mirror(reflecting: NodeSettings()).children.count == NodeSettings.all.count)
        #expect(Set(NodeSettings.all.map(\.field)).count == NodeSettings.all.count)
        #expect(Set(NodeSettings.all.map(\.name)).count == NodeSettings.all.count)
    }

    @Test("every setting is a YAML key that sets its own field and no other", arguments: NodeSettings.all.map(\.name))
    func everySettingIsAKey(name: String) throws {
        let setting = try #require(NodeSettings.setting(named: name))
        let sample = Self.sample(setting.kind)
        let parsed = try NodeSettings.parse(yaml: "\(name): \(sample.yaml)")
        #expect(setting.value(in: parsed) == sample.value)
        #expect(NodeSettings.all.filter { $0.name != name }.allSatisfy { $0.value(in: parsed) == nil })
    }

    @Test("for every setting a flag wins over the file, and the file fills an unset flag", arguments: NodeSettings.all.map(\.name))
    func flagWinsOverFile(name: String) throws {
        let setting = try #require(NodeSettings.setting(named: name))
        let (fileValue, flagValue) = (Self.sample(setting.kind, variant: 1), Self.sample(setting.kind, variant: 2))
        let file = try NodeSettings.parse(yaml: "\(name): \(fileValue.yaml)")
        var flags = NodeSettings()
        setting.set(flagValue.value, in: &flags)
        #expect(setting.value(in: flags.overriding(file)) == flagValue.value)
        #expect(setting.value(in: NodeSettings().overriding(file)) == fileValue.value)
    }

    @Test("a YAML value of the wrong kind is refused with its key", arguments: NodeSettings.all.map(\.name))
    func malformedValueNamesItsKey(name: String) throws {
        let setting = try #require(NodeSettings.setting(named: name))
        let malformed = switch setting.kind {
        case .integer: "1.5"
        case .number: "soon"
        case .text: "[a, b]"
        case .list: "{a: b}"
        case .flag: "maybe"
        }
        let error = #expect(throws: NodeConfigurationError.self) { try NodeSettings.parse(yaml: "\(name): \(malformed)", source: "node.yaml") }
        #expect(error?.key == name)
        #expect(error?.reason.hasPrefix("node.yaml: ") == true)
    }

    @Test("an unknown key is refused with its name, before any value is read")
    func unknownKey() throws {
        let error = #expect(throws: NodeConfigurationError.self) {
            try NodeSettings.parse(yaml: "stun-port: many\nstun-prot: 3478\n")
        }
        #expect(error?.key == "stun-prot")
    }

    @Test("a file that is not a mapping of settings is refused as the config")
    func notAMapping() throws {
        for yaml in ["- stun-port: 1", "stun-port"] {
            let error = #expect(throws: NodeConfigurationError.self) { try NodeSettings.parse(yaml: yaml) }
            #expect(error?.key == "config")
        }
    }

    /// The installed example config has every key commented out (docs/deploy.md).
    @Test("a file of comments only, or empty, sets nothing")
    func commentsOnly() throws {
        for yaml in ["", "# stun-port: 3478\n", "\n#realm: x\n\n"] {
            #expect(try NodeSettings.parse(yaml: yaml) == NodeSettings())
        }
    }
}
