import ICE
import Signaling
import Testing
@testable import MeshNode

@Suite struct ICEServerSettingsTests {
    static func relay(_ ip: String) -> ICEServer {
        ICEServer(urls: ["stun:\(ip):3478", "turn:\(ip):3478?transport=udp", "turn:\(ip):3478?transport=tcp", "turns:\(ip):5349?transport=tcp"],
                  username: "user-\(ip)", credential: "secret")
    }

    @Test("TURN servers go UDP, then TCP, then TLS, each in the order of the list")
    func transportOrderKeepsTheListOrder() {
        let configuration = ICEServerSettings.agentConfiguration(
            servers: [Self.relay("198.51.100.2"), Self.relay("198.51.100.20")], role: .controlling, localAddresses: [], relayOnly: false)
        #expect(configuration.stunServer?.host == "198.51.100.2")
        #expect(configuration.turnServers.map { "\($0.transport) \($0.host)" } == [
            "udp 198.51.100.2", "udp 198.51.100.20", "tcp 198.51.100.2", "tcp 198.51.100.20", "tls 198.51.100.2", "tls 198.51.100.20",
        ])
    }

    @Test("at most libnice's 8 TURN servers: three relays lose the last one's TLS")
    func atMostEightTURNServers() {
        let configuration = ICEServerSettings.agentConfiguration(
            servers: ["198.51.100.10", "198.51.100.2", "198.51.100.20"].map(Self.relay), role: .controlling, localAddresses: [], relayOnly: false)
        #expect(configuration.turnServers.count == ICEAgentConfiguration.maxTURNServers)
        #expect(configuration.turnServers.last.map { "\($0.transport) \($0.host)" } == "tls 198.51.100.2")
    }
}
