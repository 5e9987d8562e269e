public import STUN

extension TURNServer.Listener {
    /// The URIs a client uses to reach this listener at `host` (RFC 7064, RFC 7065): a UDP
    /// listener answers STUN and TURN over UDP, a TCP listener TURN over TCP, a TLS listener
    /// TURN over TLS (`turns:`, transport TCP).
    public func iceServerURIs(host: String) -> [ICEServerURI] {
        let port = address.port
        switch transport {
        case .udp: return [ICEServerURI(scheme: .stun, host: host, port: port), ICEServerURI(scheme: .turn, host: host, port: port, transport: .udp)]
        case .tcp: return [ICEServerURI(scheme: .turn, host: host, port: port, transport: .tcp)]
        case .tls: return [ICEServerURI(scheme: .turns, host: host, port: port, transport: .tcp)]
        }
    }
}
