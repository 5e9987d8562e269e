import ArgumentParser
import Foundation
import Logging
import MeshNode
import STUN
import Signaling

/// `meshnode serve`: a node with STUN/TURN, the web page and metrics.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node: STUN/TURN server, web page and metrics.",
        discussion: """
        With no options the node listens on localhost only (127.0.0.1 and ::1): STUN/TURN on \
        UDP and TCP 3478 and TLS 5349, HTTP on 8080. A YAML file given with --config sets the \
        same keys as the flags (for example `stun-port: 3478`, `user: [alice:secret]`); flags win.
        """
    )

    /// Every node setting as a flag, made from `NodeSettings.all`.
    @OptionGroup var flags: NodeSettingsOptions
    @Option(help: "YAML config file with the same keys as these flags.")
    var config: String?
    @Flag(help: "Check the settings (flags and --config file), print each one's value and origin, and exit; opens no listener.")
    var checkConfig = false
    @Flag(help: "Print a config file with every setting commented out, and exit.")
    var printExampleConfig = false

    func run() async throws {
        if printExampleConfig {
            print(NodeSettings.exampleConfig, terminator: "")
            return
        }
        let configuration: NodeConfiguration
        do {
            let file = try config.map(NodeSettings.load(yamlFile:)) ?? NodeSettings()
            configuration = try NodeConfiguration(flags.settings.overriding(file))
            if checkConfig {
                print("meshnode serve: settings are valid" + (config.map { " (config file \($0))" } ?? " (no config file)"))
                print(NodeSettings.effectiveReport(flags: flags.settings, file: file, configuration: configuration), terminator: "")
                return
            }
        } catch let error as NodeConfigurationError {
            throw ValidationError(error.description)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "meshnode")
        let node = Node(configuration: configuration, logger: logger)
        try await node.run { addresses in
            var lines = ["meshnode is running.", "  web page: \(addresses.web)", "  metrics:  \(addresses.metrics)"]
            if let fingerprint = addresses.tlsFingerprint { lines.append("  tls sha256: \(fingerprint)") }
            lines += addresses.turn.map { "  stun/turn: \($0)" }
            print(lines.joined(separator: "\n"))
            fflush(nil)
        }
    }
}
