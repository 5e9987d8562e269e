import Foundation
import NIOCore
import Signaling
import STUN
import TURNServer

/// The node's public identity (docs/deploy.md "Public host and external IP"): the one answer to
/// "which addresses are this node's own", fed by `public-host`, `external-ip`, `public-address`
/// and the bind addresses. Logins (the node a client signed for), node links (the address the
/// node names itself by and answers to), the STUN/TURN URLs of `welcome` and the names of the
/// self-signed certificate all come from here, so that they cannot disagree.
struct NodePublicIdentity: Sendable {
    /// `public-host`: the DNS name clients reach the node at.
    var publicHost: String?
    /// `external-ip`: the public side of a 1:1 NAT.
    var externalAddresses: [ExternalAddress]
    /// `bind`, numeric.
    var bindAddresses: [String]
    /// The web port (HTTP(S) and `/ws`).
    var httpPort: Int
    /// `public-address`: further `host:port` forms, already normalised.
    var publicAddresses: [String]

    init(publicHost: String?, externalAddresses: [ExternalAddress], bindAddresses: [String], httpPort: Int, publicAddresses: [String]) {
        self.publicHost = publicHost?.lowercased()
        self.externalAddresses = externalAddresses
        self.bindAddresses = bindAddresses
        self.httpPort = httpPort
        self.publicAddresses = publicAddresses
    }

    init(_ configuration: NodeConfiguration) {
        self.init(publicHost: configuration.publicHost, externalAddresses: configuration.turn.externalAddresses,
                  bindAddresses: configuration.turn.bindAddresses, httpPort: configuration.httpPort,
                  publicAddresses: configuration.signaling.publicAddresses)
    }

    /// The `host:port` the node names itself by in the links it makes and in its node records:
    /// the public side of the first bind address (`external-ip`), else that address. Numeric
    /// even with a public host, because other nodes prove an address by dialling it back and
    /// never resolve a name on someone else's behalf (docs/mesh.md); a link dialled at the
    /// public host is answered as the public host (``authorities``).
    var nodeAddress: String {
        let first = bindAddresses.first ?? "127.0.0.1"
        guard let ip = IPAddress(string: first) else { return LoginBody.authority(host: first, port: httpPort) }
        // A wildcard is no address to dial: the external address of its family stands for it.
        if ip == .v4(0) || ip == .v6(0, 0), let external = externalAddresses.first(where: { $0.advertised.isIPv4 == ip.isIPv4 }) {
            return LoginBody.authority(host: external.advertised.description, port: httpPort)
        }
        return LoginBody.authority(host: advertised(ip).description, port: httpPort)
    }

    /// What one of the node's own IPs is to the outside (`external-ip`), or itself.
    func advertised(_ ip: IPAddress) -> IPAddress {
        ExternalAddress.advertised(ip, in: externalAddresses)
    }

    /// The `host:port` forms a login may name (docs/protocol.md "Login") and a link may dial:
    /// the public host, the external IPs, each bind address (`localhost` for a loopback one,
    /// every interface address and the host name for a wildcard), and `public-address`.
    var authorities: Set<String> {
        var hosts = Set<String>()
        if let publicHost { hosts.insert(publicHost) }
        hosts.formUnion(externalAddresses.map(\.advertised.description))
        for address in bindAddresses {
            if address == "0.0.0.0" || address == "::" {
                let devices = (try? System.enumerateDevices()) ?? []
                // A link-local address needs its zone, which a URL rarely carries: left out.
                hosts.formUnion(devices.compactMap { $0.address?.ipAddress }.filter { !$0.contains("%") && !$0.lowercased().hasPrefix("fe80") })
                hosts.insert("localhost")
                hosts.insert(ProcessInfo.processInfo.hostName)
            } else {
                hosts.insert(address)
                if address.hasPrefix("127.") || address == "::1" { hosts.insert("localhost") }
            }
        }
        return Set(hosts.map { LoginBody.authority(host: $0, port: httpPort) }).union(publicAddresses)
    }

    /// The names and addresses the self-signed web certificate is made for (its subjectAltName):
    /// the public host, the external IPs and the bind addresses that are not wildcards.
    var certificateNames: (dns: [String], ips: [String]) {
        var dns: [String] = publicHost.map { [$0] } ?? []
        var ips = externalAddresses.map(\.advertised.description)
        for address in bindAddresses where address != "0.0.0.0" && address != "::" {
            if !ips.contains(address) { ips.append(address) }
            if (address.hasPrefix("127.") || address == "::1") && !dns.contains("localhost") { dns.append("localhost") }
        }
        return (dns, ips)
    }

    /// The common name of the self-signed certificate: the public host, else the node's host.
    var certificateCommonName: String {
        publicHost ?? String(nodeAddress[..<(nodeAddress.lastIndex(of: ":") ?? nodeAddress.endIndex)])
    }

    /// The host a client is told to reach the STUN/TURN listener at `listener` by, or nil when
    /// the client cannot reach it (docs/protocol.md "welcome"):
    /// - loopback and link-local listeners only to a client that came over loopback (a remote
    ///   client would try its own machine, or a link it is not on);
    /// - with a public host, its name (a `turns:` URL must name what the certificate names);
    /// - else the listener's public side (`external-ip`), or the listener's address; a wildcard
    ///   listener by the host the client dialled.
    func iceHost(listener: IPAddress, clientIP: String?, hostHint: String?) -> String? {
        let clientIsLocal = clientIP.flatMap { IPAddress(string: $0) }.map(Self.isLoopback) ?? false
        if Self.isLoopback(listener) || Self.isLinkLocal(listener) {
            return clientIsLocal ? listener.description : nil
        }
        if let publicHost, !clientIsLocal { return publicHost }
        if listener == .v4(0) || listener == .v6(0, 0) {
            // The name or address the client dialled, if it is not an unreachable one.
            guard let hostHint else { return publicHost }
            if let hinted = IPAddress(string: hostHint), !clientIsLocal, Self.isLoopback(hinted) || Self.isLinkLocal(hinted) { return nil }
            return hostHint
        }
        return publicHost ?? advertised(listener).description
    }

    /// 127.0.0.0/8, ::1, and their IPv4-mapped forms.
    static func isLoopback(_ ip: IPAddress) -> Bool {
        switch ip {
        case .v4(let a): return a >> 24 == 127
        case .v6(let hi, let lo):
            if hi == 0 && lo == 1 { return true }
            return hi == 0 && lo >> 32 == 0xffff && (lo & 0xffff_ffff) >> 24 == 127
        }
    }

    /// 169.254.0.0/16 and fe80::/10 (RFC 3927, RFC 4291 §2.5.6).
    static func isLinkLocal(_ ip: IPAddress) -> Bool {
        switch ip {
        case .v4(let a): return a >> 16 == 0xa9fe
        case .v6(let hi, _): return hi >> 54 == 0x3fa
        }
    }
}
