import Foundation
import ICE
import Signaling
import STUN
import TURNServer

/// Turns the RTCIceServer list a node hands out at login into an ICE agent configuration.
public enum ICEServerSettings {
    /// A STUN or TURN URI (RFC 7064, RFC 7065) split into its parts.
    struct ServerURI: Equatable {
        var scheme: String
        var host: String
        var port: UInt16
        var transport: String
    }

    /// Parses `stun:HOST[:PORT]`, `turn:HOST[:PORT][?transport=udp|tcp]`, `turns:…`; IPv6 hosts in brackets.
    static func parse(_ uri: String) -> ServerURI? {
        guard let colon = uri.firstIndex(of: ":") else { return nil }
        let scheme = uri[..<colon].lowercased()
        guard ["stun", "stuns", "turn", "turns"].contains(scheme) else { return nil }
        var rest = uri[uri.index(after: colon)...]
        var transport = scheme.hasSuffix("s") ? "tcp" : "udp"
        if let question = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: question)...]
            for pair in query.split(separator: "&") where pair.hasPrefix("transport=") {
                transport = pair.dropFirst("transport=".count).lowercased()
            }
            rest = rest[..<question]
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() }
        } else if let portColon = rest.lastIndex(of: ":") {
            host = rest[..<portColon]
            portText = rest[rest.index(after: portColon)...]
        } else {
            host = rest
        }
        let defaultPort: UInt16 = scheme.hasSuffix("s") ? 5349 : 3478
        guard !host.isEmpty, let port = portText.map({ UInt16($0) }) ?? defaultPort else { return nil }
        return ServerURI(scheme: scheme, host: String(host), port: port, transport: transport)
    }

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
            for uri in server.urls.compactMap(parse) {
                guard let host = resolve(uri.host) else { continue }
                switch uri.scheme {
                case "stun":
                    if configuration.stunServer == nil { configuration.stunServer = .init(host: host, port: uri.port) }
                case "turn", "turns":
                    guard let username = server.username, let password = server.credential else { continue }
                    let transport: ICEAgentConfiguration.TURNServer.Transport =
                        uri.scheme == "turns" ? .tls : (uri.transport == "tcp" ? .tcp : .udp)
                    turn.append(.init(host: host, port: uri.port, username: username, password: password, transport: transport))
                default: continue
                }
            }
        }
        let order: [ICEAgentConfiguration.TURNServer.Transport] = [.udp, .tcp, .tls]
        let sorted = order.flatMap { transport in turn.filter { $0.transport == transport } }
        configuration.turnServers = Array(sorted.prefix(ICEAgentConfiguration.maxTURNServers))
        return configuration
    }
}
