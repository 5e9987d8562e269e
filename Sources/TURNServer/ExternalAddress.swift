public import STUN

/// coturn's 1:1 NAT form, `PUBLIC[/PRIVATE]` (`--external-ip`): a server behind a 1:1 NAT (a
/// cloud VM) binds its sockets on the private address, and clients must be told the public one.
/// RFC 8656 §7.1 lets the server choose the relayed transport address it returns; what a peer
/// sends to the public address reaches the private socket through the NAT.
public struct ExternalAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address clients and peers reach.
    public var advertised: IPAddress
    /// The local address it stands for; nil: every local address of the same family.
    public var local: IPAddress?

    public init(advertised: IPAddress, local: IPAddress? = nil) {
        self.advertised = advertised
        self.local = local
    }

    /// Parses `PUBLIC` or `PUBLIC/PRIVATE`, both numeric and of one family; nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), let advertised = IPAddress(string: parts[0]) else { return nil }
        let local = parts.count == 2 ? IPAddress(string: parts[1]) : nil
        if parts.count == 2 {
            guard let local, local.isIPv4 == advertised.isIPv4 else { return nil }
        }
        self.init(advertised: advertised, local: local)
    }

    public var description: String { local.map { "\(advertised)/\($0)" } ?? "\(advertised)" }

    /// What `ip`, one of this server's own addresses, is advertised as: the entry naming it as
    /// its private address, else an entry of its family without one, else `ip` itself.
    public static func advertised(_ ip: IPAddress, in entries: [ExternalAddress]) -> IPAddress {
        if let exact = entries.first(where: { $0.local == ip }) { return exact.advertised }
        if let family = entries.first(where: { $0.local == nil && $0.advertised.isIPv4 == ip.isIPv4 }) { return family.advertised }
        return ip
    }
}
