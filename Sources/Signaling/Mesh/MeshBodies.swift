/// Bodies of the mesh messages between linked nodes (docs/mesh.md): `mesh` carries node
/// records (gossip), `dialback` asks the other node to reach this node's STUN/TURN ports, and
/// `dialback-result` answers it.

/// `mesh`, node → node over a link: signed node records, new or refreshed.
public struct MeshBody: Codable, Sendable, Equatable {
    public var records: [SignedNodeRecord]

    public init(records: [SignedNodeRecord]) {
        self.records = records
    }
}

/// `dialback`, node → node: "send a STUN Binding request to each of these and tell me what
/// came back". Addresses are `ip:port` (`[v6]:port`); at most `maximumAddresses` in all.
public struct DialbackBody: Codable, Sendable, Equatable {
    public static let maximumAddresses = 8

    public var udp: [String]
    public var tcp: [String]

    public init(udp: [String], tcp: [String]) {
        self.udp = udp
        self.tcp = tcp
    }
}

/// The outcome of dialling one address.
public struct DialbackOutcome: Codable, Sendable, Equatable {
    public var transport: String
    public var address: String
    public var ok: Bool
    /// Round trip of the answered Binding, in milliseconds.
    public var rttMs: Double?
    /// Why it failed, for humans.
    public var reason: String?

    public init(transport: String, address: String, ok: Bool, rttMs: Double? = nil, reason: String? = nil) {
        self.transport = transport
        self.address = address
        self.ok = ok
        self.rttMs = rttMs
        self.reason = reason
    }
}

/// `dialback-result`, answering a `dialback` (`of` is its id).
public struct DialbackResultBody: Codable, Sendable, Equatable {
    public var of: String
    public var results: [DialbackOutcome]
    /// The IP address the asking node's link comes from, as the answering node sees it.
    public var observed: String?

    public init(of: String, results: [DialbackOutcome], observed: String?) {
        self.of = of
        self.results = results
        self.observed = observed
    }
}
