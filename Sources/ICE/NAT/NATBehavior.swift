import NIOCore

/// NAT mapping behaviour (RFC 4787 §4.1), as RFC 5780 §4.3 measures it.
public enum NATMapping: String, Sendable, Codable, CaseIterable {
    /// No NAT: the mapped address is the local address.
    case none
    /// Endpoint-independent mapping.
    case eim
    /// Address-dependent mapping.
    case adm
    /// Address-and-port-dependent mapping.
    case apdm

    public var meaning: String {
        switch self {
        case .none: "no NAT: the mapped address is the local address"
        case .eim: "endpoint-independent"
        case .adm: "address-dependent"
        case .apdm: "address-and-port-dependent"
        }
    }
}

/// NAT filtering behaviour (RFC 4787 §5), as RFC 5780 §4.4 measures it.
public enum NATFiltering: String, Sendable, Codable, CaseIterable {
    /// Endpoint-independent filtering.
    case eif
    /// Address-dependent filtering.
    case adf
    /// Address-and-port-dependent filtering.
    case apdf

    public var meaning: String {
        switch self {
        case .eif: "endpoint-independent"
        case .adf: "address-dependent"
        case .apdf: "address-and-port-dependent"
        }
    }
}

/// The tests of RFC 5780 behaviour discovery, in the order ``NATBehaviorDiscovery`` runs them.
///
/// Filtering runs before mapping on the same socket: the mapping tests send to the alternate
/// address, which would open a filtering NAT to it and spoil the filtering tests after them.
public enum NATTest: String, Sendable, Codable, CaseIterable {
    /// Test I (§4.3, §4.4): Binding to the primary address.
    case binding = "test-1"
    /// Filtering test II (§4.4): to the primary address with CHANGE-REQUEST change IP and port.
    case filteringChangeIPAndPort = "filtering-test-2"
    /// Filtering test III (§4.4): to the primary address with CHANGE-REQUEST change port.
    case filteringChangePort = "filtering-test-3"
    /// Mapping test II (§4.3): to the alternate IP, primary port.
    case mappingAlternateIP = "mapping-test-2"
    /// Mapping test III (§4.3): to the alternate IP and port.
    case mappingAlternateIPAndPort = "mapping-test-3"
}

/// What one test saw.
public enum NATTestOutcome: Sendable, Equatable {
    /// A success response: where it came from (the datagram's source), its mapped address,
    /// and the RFC 5780 attributes it carried.
    case response(source: SocketAddress, mapped: SocketAddress, otherAddress: SocketAddress?, responseOrigin: SocketAddress?)
    /// An error response (a server without RFC 5780 answers CHANGE-REQUEST with 420).
    case error(code: Int, reason: String)
    /// A success response without a usable mapped address.
    case malformed(String)
    /// No response before the test's deadline.
    case timeout
}

/// One test as run: where it went, how often it was sent, what came back.
public struct NATTestRecord: Sendable, Equatable {
    public var test: NATTest
    public var destination: SocketAddress
    public var changeIP: Bool
    public var changePort: Bool
    public var transmissions: Int
    public var outcome: NATTestOutcome

    public var summary: String {
        switch outcome {
        case let .response(source, mapped, _, _): "response from \(source.compactDescription), mapped \(mapped.compactDescription)"
        case let .error(code, reason): "error \(code) \(reason)"
        case let .malformed(why): "unusable response: \(why)"
        case .timeout: "no response (\(transmissions) sent)"
        }
    }
}

/// The result of a behaviour discovery.
public struct NATBehaviorReport: Sendable, Equatable {
    /// True when test I got no answer at all: UDP to the server is blocked (or the server is down).
    public var udpBlocked = false
    public var mapping: NATMapping?
    public var filtering: NATFiltering?
    public var localAddress: SocketAddress
    public var server: SocketAddress
    /// The mapped address test I saw.
    public var mappedAddress: SocketAddress?
    /// The server's OTHER-ADDRESS (or the alternate server given instead).
    public var otherAddress: SocketAddress?
    public var tests: [NATTestRecord] = []
    /// Why a behaviour is unknown, or anything odd seen on the way.
    public var notes: [String] = []

    public init(localAddress: SocketAddress, server: SocketAddress) {
        self.localAddress = localAddress
        self.server = server
    }

    /// The DESIGN.md name: `eim-eif`, `eim-adf`, `eim-apdf`, `apdm-apdf`, `udp-blocked`, `none`;
    /// other combinations by the same rule (`adm-apdf`, and `none-adf` / `none-apdf` for a
    /// public address behind a filtering firewall); `unknown` when a behaviour could not be measured.
    public var name: String {
        if udpBlocked { return "udp-blocked" }
        guard let mapping, let filtering else { return "unknown" }
        if mapping == .none { return filtering == .eif ? "none" : "none-\(filtering.rawValue)" }
        return "\(mapping.rawValue)-\(filtering.rawValue)"
    }

    /// Whether both behaviours (or a UDP block) were established.
    public var isComplete: Bool { udpBlocked || (mapping != nil && filtering != nil) }
}

extension SocketAddress {
    /// `IP:PORT` (IPv6 in brackets), without NIO's `[IPv4]` prefix.
    public var compactDescription: String {
        let ip = ipAddress ?? "?"
        let port = port ?? 0
        if case .v6 = self { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}
