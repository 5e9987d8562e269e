import Foundation
@testable import ICE
import NIOCore
import Signaling
import Testing
@testable import MeshNode
import STUN
import TURNServer

/// The signaling settings of `meshnode serve`: `data-dir` and `heartbeat`, as flags and YAML keys.
@Suite struct SignalingSettingsTests {
    @Test func yamlKeysAndFlags() throws {
        let file = try NodeSettings.parse(yaml: """
            data-dir: /var/lib/meshnode
            heartbeat: 5
            link: [ws://192.0.2.1:8080/ws]
            """)
        var configuration = try NodeConfiguration(file)
        #expect(configuration.signaling.dataDirectory == "/var/lib/meshnode")
        #expect(configuration.signaling.heartbeat == .seconds(5))
        #expect(configuration.signaling.links == ["ws://192.0.2.1:8080/ws"])
        #expect(configuration.signaling.nodeKeyPath == "/var/lib/meshnode/node-identity")
        var flags = NodeSettings()
        flags.dataDir = "/tmp/x"
        flags.heartbeat = 0.5
        configuration = try NodeConfiguration(flags.overriding(file))
        #expect(configuration.signaling.dataDirectory == "/tmp/x")
        #expect(configuration.signaling.heartbeat == .milliseconds(500))
    }

    @Test func meshAndConnectionSettings() throws {
        let file = try NodeSettings.parse(yaml: """
            max-connections: 100
            gossip-interval: 2.5
            """)
        let configuration = try NodeConfiguration(file)
        #expect(configuration.signaling.maxConnections == 100)
        #expect(configuration.signaling.gossipInterval == .milliseconds(2500))
        let defaults = try NodeConfiguration(NodeSettings())
        #expect(defaults.signaling.gossipInterval == .seconds(5))
        #expect(defaults.signaling.maxConnections == ConnectionLimit.defaultMaximum())
        var bad = NodeSettings()
        bad.maxConnections = 0
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(bad) }
        bad = NodeSettings()
        bad.gossipInterval = 0
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(bad) }
    }

    @Test func defaults() throws {
        let configuration = try NodeConfiguration(NodeSettings())
        #expect(configuration.signaling.dataDirectory.hasSuffix("/meshnode"))
        #expect(configuration.signaling.heartbeat == .seconds(15))
    }

    @Test func badValuesNameTheirKey() {
        var settings = NodeSettings()
        settings.heartbeat = 0
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(settings) }
        settings = NodeSettings()
        settings.link = ["not a url"]
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(settings) }
        settings = NodeSettings()
        settings.dataDir = ""
        do {
            _ = try NodeConfiguration(settings)
            Issue.record("an empty data-dir was accepted")
        } catch let error as NodeConfigurationError {
            #expect(error.key == "data-dir")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// Item 6: STUN and TURN URLs for every listener, TURN REST credentials for the name, and the
    /// client's host for wildcard listeners (a client on this host, which may use loopback).
    @Test func iceServersFromListeners() throws {
        let listeners = [
            TURNServer.Listener(transport: .udp, address: try SocketAddress(ipAddress: "0.0.0.0", port: 3478)),
            TURNServer.Listener(transport: .tcp, address: try SocketAddress(ipAddress: "127.0.0.1", port: 3478)),
            TURNServer.Listener(transport: .tls, address: try SocketAddress(ipAddress: "::1", port: 5349)),
        ]
        let servers = NodeSignaling.iceServers(listeners: listeners, secret: "s3cret", name: "alice",
                                               identity: NodePublicIdentity(publicHost: nil, externalAddresses: [], bindAddresses: ["0.0.0.0"],
                                                                            httpPort: 8080, publicAddresses: []),
                                               clientIP: "127.0.0.1", hostHint: "198.51.100.7")
        #expect(servers.first?.urls == ["stun:198.51.100.7:3478"])
        #expect(servers.last?.urls == ["turn:198.51.100.7:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp", "turns:[::1]:5349?transport=tcp"])
        let username = try #require(servers.last?.username)
        #expect(username.hasSuffix(":alice"))
        #expect(servers.last?.credential == TURNRESTCredentials.password(secret: "s3cret", username: username))
    }
}
