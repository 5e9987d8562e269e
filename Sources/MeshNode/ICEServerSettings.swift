import Foundation
import ICE
import Signaling
import STUN
import TURNServer

/// Turns the RTCIceServer list a node hands out at login into an ICE agent configuration.
public enum ICEServerSettings {
    /// An IP literal for `host`: itself if it is one, else its first IPv4 (then IPv6) address.
    static func resolve(_ host: String) -> String? {
        if IPAddress(string: host) != nil { return host }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(first) }
        var candidates: [String] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                candidates.append(String(cString: buffer))
            }
            node = current.pointee.ai_next
        }
        return candidates.first { !$0.contains(":") } ?? candidates.first
    }

    /// The agent configuration for `servers`: the first STUN server, the TURN servers (UDP, then
    /// TCP, then TLS, as ICE prefers them; within a transport in the order of `servers`), at most
    /// ``ICEAgentConfiguration/maxTURNServers`` of them: three relays with UDP, TCP and TLS each
    /// would be nine, and libnice refuses the ninth, so the last relay's TLS URL is left out.
    public static func agentConfiguration(servers: [ICEServer], role: ICEAgentConfiguration.Role, localAddresses: [String],
                                          relayOnly: Bool) -> ICEAgentConfiguration {
        var configuration = ICEAgentConfiguration(role: role, relayOnly: relayOnly, localAddresses: localAddresses)
        var turn: [ICEAgentConfiguration.TURNServer] = []
        for server in servers {
            for uri in server.urls.compactMap(ICEServerURI.init) {
                guard let host = resolve(uri.host), let port = UInt16(exactly: uri.port) else { continue }
                switch uri.scheme {
                case .stun:
                    if configuration.stunServer == nil { configuration.stunServer = .init(host: host, port: port) }
                case .turn, .turns:
                    guard let username = server.username, let password = server.credential else { continue }
                    let transport: ICEAgentConfiguration.TURNServer.Transport =
                        uri.scheme == .turns ? .tls : (uri.transport == .tcp ? .tcp : .udp)
                    turn.append(.init(host: host, port: port, username: username, password: password, transport: transport))
                case .stuns: continue  // libnice has no STUN over TLS
                }
            }
        }
        let order: [ICEAgentConfiguration.TURNServer.Transport] = [.udp, .tcp, .tls]
        let sorted = order.flatMap { transport in turn.filter { $0.transport == transport } }
        configuration.turnServers = Array(sorted.prefix(ICEAgentConfiguration.maxTURNServers))
        return configuration
    }
}
