import STUN
/// Which peer addresses a TURN allocation may relay to.
///
/// Secure by default (the CVE-2020-26262 family): loopback, private, shared (CGN), link-local,
/// multicast, reserved and unspecified addresses are refused, and so are IPv6 forms that embed
/// them (IPv4-mapped, IPv4-compatible, NAT64 and 6to4). Operators open blocks with allow rules;
/// deny rules close more. A deny rule beats an allow rule, which beats the defaults.
public struct PeerAddressPolicy: Sendable {
    public var allow: [CIDR]
    public var deny: [CIDR]

    /// Blocks refused unless an allow rule names them.
    public static let forbiddenByDefault: [CIDR] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
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
