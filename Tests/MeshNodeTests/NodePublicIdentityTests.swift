import Foundation
import NIOCore
import Signaling
import Testing
@testable import MeshNode
import STUN
import TURNServer

/// The node's public identity (issue 13 item 2): one notion of "which addresses are mine" for
/// logins, links and `welcome`, fed by public-host, external-ip, public-address and the binds.
@Suite struct NodePublicIdentityTests {
    static let listeners: [TURNServer.Listener] = [
        TURNServer.Listener(transport: .udp, address: try! SocketAddress(ipAddress: "10.0.0.5", port: 3478)),
        TURNServer.Listener(transport: .tcp, address: try! SocketAddress(ipAddress: "10.0.0.5", port: 3478)),
        TURNServer.Listener(transport: .tls, address: try! SocketAddress(ipAddress: "10.0.0.5", port: 5349)),
        TURNServer.Listener(transport: .udp, address: try! SocketAddress(ipAddress: "127.0.0.1", port: 3478)),
        TURNServer.Listener(transport: .tls, address: try! SocketAddress(ipAddress: "127.0.0.1", port: 5349)),
        TURNServer.Listener(transport: .udp, address: try! SocketAddress(ipAddress: "fe80::1", port: 3478)),
    ]

    static func identity(publicHost: String? = nil, external: [String] = []) -> NodePublicIdentity {
        NodePublicIdentity(publicHost: publicHost, externalAddresses: external.compactMap(ExternalAddress.init),
                           bindAddresses: ["10.0.0.5", "127.0.0.1"], httpPort: 443, publicAddresses: [])
    }

    static func urls(_ identity: NodePublicIdentity, clientIP: String, hostHint: String? = nil) -> [String] {
        NodeSignaling.iceServers(listeners: listeners, secret: "s", name: "alice", identity: identity, clientIP: clientIP, hostHint: hostHint)
            .flatMap(\.urls)
    }

    @Test("a remote client gets no loopback or link-local URL; a client on this host gets them")
    func remoteClientsGetNoLoopbackURLs() {
        let remote = Self.urls(Self.identity(), clientIP: "198.51.100.9")
        #expect(remote == ["stun:10.0.0.5:3478", "turn:10.0.0.5:3478?transport=udp", "turn:10.0.0.5:3478?transport=tcp",
                           "turns:10.0.0.5:5349?transport=tcp"])
        let local = Self.urls(Self.identity(), clientIP: "127.0.0.1")
        #expect(local.contains("turns:127.0.0.1:5349?transport=tcp") && local.contains("stun:[fe80::1]:3478"))
        // An IPv4-mapped loopback source is local too.
        #expect(Self.urls(Self.identity(), clientIP: "::ffff:127.0.0.1").contains("stun:127.0.0.1:3478"))
    }

    @Test("with public-host every URL to a remote client names the host, turns: included, each once")
    func publicHostNamesTheURLs() {
        let urls = Self.urls(Self.identity(publicHost: "Meet.Example.org", external: ["203.0.113.5/10.0.0.5"]), clientIP: "198.51.100.9")
        #expect(urls == ["stun:meet.example.org:3478", "turn:meet.example.org:3478?transport=udp", "turn:meet.example.org:3478?transport=tcp",
                         "turns:meet.example.org:5349?transport=tcp"])
    }

    @Test("external-ip: the URLs name the public side of the listener's private address")
    func externalIPInURLs() {
        let urls = Self.urls(Self.identity(external: ["203.0.113.5/10.0.0.5"]), clientIP: "198.51.100.9")
        #expect(urls.first == "stun:203.0.113.5:3478")
        #expect(urls.allSatisfy { $0.contains("203.0.113.5") })
    }

    @Test("the node's address, the logins it accepts and the certificate's names come from one place")
    func oneNotionOfOwnAddresses() {
        let named = Self.identity(publicHost: "meet.example.org", external: ["203.0.113.5/10.0.0.5"])
        // Numeric: other nodes dial it back and resolve no names (docs/mesh.md).
        #expect(named.nodeAddress == "203.0.113.5:443")
        #expect(named.authorities == ["meet.example.org:443", "203.0.113.5:443", "10.0.0.5:443", "127.0.0.1:443", "localhost:443"])
        #expect(named.certificateNames.dns == ["meet.example.org", "localhost"])
        #expect(named.certificateNames.ips == ["203.0.113.5", "10.0.0.5", "127.0.0.1"])
        let natted = Self.identity(external: ["203.0.113.5/10.0.0.5"])
        #expect(natted.nodeAddress == "203.0.113.5:443")
        #expect(Self.identity().nodeAddress == "10.0.0.5:443")
        let wildcard = NodePublicIdentity(publicHost: nil, externalAddresses: [ExternalAddress("203.0.113.5/10.0.0.5")!],
                                          bindAddresses: ["0.0.0.0"], httpPort: 443, publicAddresses: [])
        #expect(wildcard.nodeAddress == "203.0.113.5:443")
    }

    @Test("external-ip: PUBLIC/PRIVATE maps one address, PUBLIC alone its family; bad forms are refused with the key")
    func externalAddressForms() throws {
        let entries = ["203.0.113.5/10.0.0.5", "2001:db8::5"].compactMap(ExternalAddress.init)
        #expect(ExternalAddress.advertised(IPAddress(string: "10.0.0.5")!, in: entries) == IPAddress(string: "203.0.113.5"))
        #expect(ExternalAddress.advertised(IPAddress(string: "10.0.0.6")!, in: entries) == IPAddress(string: "10.0.0.6"))
        #expect(ExternalAddress.advertised(IPAddress(string: "fd00::7")!, in: entries) == IPAddress(string: "2001:db8::5"))
        for bad in ["203.0.113.5/2001:db8::1", "example.org", "1.2.3.4/5.6.7.8/9.9.9.9"] {
            var settings = NodeSettings()
            settings.externalIP = [bad]
            let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(settings) }
            #expect(error?.key == "external-ip")
        }
        var twice = NodeSettings()
        twice.externalIP = ["203.0.113.5/10.0.0.5", "203.0.113.6/10.0.0.5"]
        #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(twice) }
    }

    @Test("public-host must be a DNS name, not an address; http-redirect-port needs https")
    func publicHostAndRedirectRules() {
        for bad in ["192.0.2.1", "bad host", "-x.example", String(repeating: "a", count: 64) + ".example"] {
            var settings = NodeSettings()
            settings.publicHost = bad
            let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(settings) }
            #expect(error?.key == "public-host")
        }
        var redirect = NodeSettings()
        redirect.httpRedirectPort = 8081
        let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(redirect) }
        #expect(error?.key == "http-redirect-port")
    }
}

/// `http-redirect-port`: 301 to https on the node's own host, never elsewhere.
@Suite struct HTTPSRedirectTests {
    static let identity = NodePublicIdentity(publicHost: nil, externalAddresses: [], bindAddresses: ["192.0.2.7", "127.0.0.1"],
                                             httpPort: 443, publicAddresses: [])

    @Test("the Host header is kept when it names this node; any other host goes to the node's address")
    func redirectStaysOnTheNode() {
        let redirect = HTTPSRedirect(identity: Self.identity, httpsPort: 443)
        #expect(redirect.location(host: "192.0.2.7", path: "/call", query: "a=1") == "https://192.0.2.7/call?a=1")
        #expect(redirect.location(host: "localhost:80", path: "/", query: nil) == "https://localhost/")
        #expect(redirect.location(host: "evil.example", path: "//evil.example/x", query: nil) == "https://192.0.2.7//evil.example/x")
        #expect(redirect.location(host: nil, path: "", query: nil) == "https://192.0.2.7/")
    }

    @Test("with public-host every redirect names it, with the https port when not 443")
    func publicHostWins() {
        var identity = Self.identity
        identity.publicHost = "meet.example.org"
        let redirect = HTTPSRedirect(identity: identity, httpsPort: 8443)
        #expect(redirect.location(host: "192.0.2.7:8080", path: "/x", query: "") == "https://meet.example.org:8443/x")
        #expect(redirect.location(host: "evil.example", path: "/", query: nil) == "https://meet.example.org:8443/")
    }
}

/// The web port listens on every bind address, but not twice where a wildcard covers one.
@Suite struct WebHostsTests {
    @Test("specific addresses are served one by one; a wildcard covers its family, a dual-stack :: both")
    func wildcardsCoverTheirFamily() {
        #expect(Node.webHosts(bind: ["192.0.2.2", "127.0.0.1", "::1"], dualStack: true) == ["192.0.2.2", "127.0.0.1", "::1"])
        #expect(Node.webHosts(bind: ["0.0.0.0", "127.0.0.1", "::1"], dualStack: true) == ["0.0.0.0", "::1"])
        #expect(Node.webHosts(bind: ["0.0.0.0", "::"], dualStack: true) == ["::"])
        #expect(Node.webHosts(bind: ["0.0.0.0", "::"], dualStack: false) == ["0.0.0.0", "::"])
        #expect(Node.webHosts(bind: ["::", "127.0.0.1", "::1"], dualStack: false) == ["::", "127.0.0.1"])
    }
}
