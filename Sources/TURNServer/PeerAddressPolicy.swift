import STUN
/// Which peer addresses a TURN allocation may relay to.
///
/// Secure by default (the CVE-2020-26262 family): loopback, private, shared (CGN), link-local,
/// multicast, reserved and unspecified addresses are refused, and so are the special-purpose
/// blocks of the IANA registries (RFC 6890) that lead somewhere other than one host: the 6to4
/// relay anycast 192.88.99.0/24 (RFC 7526) and Teredo 2001::/32 (RFC 4380) hand the packet to
/// a relay that forwards it to an IPv4 address of the sender's choosing; the local-use NAT64
/// prefix 64:ff9b:1::/48 (RFC 8215) reaches a translator inside some network; benchmarking
/// (198.18.0.0/15, 2001:2::/48), discard-only 100::/64 (RFC 6666), ORCHID 2001:10::/28 and SRv6
/// SIDs 5f00::/16 (RFC 9602) are not meant to be reached from outside. IPv6 forms that embed a
/// refused IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 and 6to4) are refused with it.
/// Operators open blocks with allow rules; deny rules close more. A deny rule beats an allow
/// rule, which beats the defaults. The server's own addresses are refused on top of these
/// (``ownAddressRefusal(ip:port:own:)``).
public struct PeerAddressPolicy: Sendable {
    public var allow: [CIDR]
    public var deny: [CIDR]

    /// Blocks refused unless an allow rule names them.
    public static let forbiddenByDefault: [CIDR] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/32", "2001:2::/48", "2001:10::/28", "5f00::/16",
        "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    ].map { CIDR(string: $0)! }

    public init(allow: [CIDR] = [], deny: [CIDR] = []) {
        self.allow = allow
        self.deny = deny
    }

    /// Why a peer is refused, or nil when it may be relayed to.
    public func refusal(for peer: IPAddress) -> String? {
        let forms = [peer] + (Self.embeddedIPv4(peer).map { [$0] } ?? [])
        if let rule = deny.first(where: { rule in forms.contains { rule.contains($0) } }) {
            return "peer \(peer) is denied by rule \(rule)"
        }
        if allow.contains(where: { rule in forms.contains { rule.contains($0) } }) { return nil }
        for form in forms {
            if let block = Self.forbiddenByDefault.first(where: { $0.contains(form) }) {
                return form == peer ? "peer \(peer) is in \(block), which is not relayed to"
                                    : "peer \(peer) embeds \(form), in \(block), which is not relayed to"
            }
        }
        return nil
    }

    /// Why `ip`:`port` is refused as one of the server's own addresses, or nil.
    ///
    /// Relaying to its own listener would make the server its own client, with the relayed
    /// address as the client's source: requests, allocations and connection caps counted
    /// against an address that is not the sender's, and packets that loop through the server.
    /// That is refused always, whatever the allow rules say. Other ports on the server's
    /// addresses (its HTTP port, SSH, a database bound to the public address) are refused unless
    /// an allow rule names the address, like loopback. Its relay ports stay open: they are other
    /// allocations' relayed addresses, and two clients of one server that both need a relay
    /// (both behind symmetric NATs) reach each other only through a pair of relayed candidates.
    public func ownAddressRefusal(ip: IPAddress, port: Int, own: OwnAddresses) -> String? {
        let forms = [ip] + (Self.embeddedIPv4(ip).map { [$0] } ?? [])
        guard let mine = forms.first(where: { own.ips.contains($0) }) else { return nil }
        if own.listenerPorts.contains(port) { return "peer \(ip) port \(port) is this server's own listener" }
        if own.relayPorts.contains(port) { return nil }
        if allow.contains(where: { $0.contains(mine) }) { return nil }
        return "peer \(ip) is this server's own address: only its relay ports \(own.relayPorts.lowerBound)-\(own.relayPorts.upperBound) are relayed to"
    }

    /// The IPv4 address an IPv6 address carries: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
    /// `::a.b.c.d` (RFC 4291 §2.5.5), NAT64 `64:ff9b::a.b.c.d` (RFC 6052) and 6to4
    /// `2002:AABB:CCDD::` (RFC 3056).
    public static func embeddedIPv4(_ address: IPAddress) -> IPAddress? {
        guard case .v6(let hi, let lo) = address else { return nil }
        let low32 = IPAddress.v4(UInt32(truncatingIfNeeded: lo))
        if hi == 0 && lo >> 32 == 0xFFFF { return low32 }
        if hi == 0 && lo >> 32 == 0 && lo > 1 { return low32 }
        if hi == 0x0064_FF9B_0000_0000 && lo >> 32 == 0 { return low32 }
        if hi >> 48 == 0x2002 { return .v4(UInt32(truncatingIfNeeded: hi >> 16)) }
        return nil
    }
}

/// The server's own addresses, which ``PeerAddressPolicy/ownAddressRefusal(ip:port:own:)``
/// keeps allocations from relaying to.
public struct OwnAddresses: Sendable, Equatable {
    /// The relay addresses, the bind addresses, and for a wildcard bind address every address
    /// of the machine's interfaces of that family (the server answers on all of them).
    public var ips: Set<IPAddress>
    /// The ports the server listens on (UDP, TCP, TLS, and the RFC 5780 alternate port).
    public var listenerPorts: Set<Int>
    /// The ports relayed addresses are taken from.
    public var relayPorts: ClosedRange<Int>

    /// Own addresses `ips` with listeners on `listenerPorts` and relays in `relayPorts`.
    public init(ips: Set<IPAddress>, listenerPorts: Set<Int>, relayPorts: ClosedRange<Int>) {
        self.ips = ips
        self.listenerPorts = listenerPorts
        self.relayPorts = relayPorts
    }
}
