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
        "relay-ports: 10-5", "user: [nocolon]", "allow-peer: [10.0.0.0/40]", "bind: [example.com]",
        "log-level: loud", "stun-port: 70000", "no-such-key: 1", "max-bps: 5",
    ])
    func rejects(yaml: String) throws {
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(NodeSettings.parse(yaml: yaml)) }
    }
}
