import STUN
/// How an ``ICEAgent`` gathers candidates and checks pairs.
///
/// Servers and local addresses are IP literals: libnice does not resolve names, and
/// resolving them is left to the caller so that no lookup happens behind its back.
public struct ICEAgentConfiguration: Sendable, Hashable {
    /// The ICE role (RFC 8445 §6.1.1). The offerer of a full-ICE session is controlling.
    public enum Role: Sendable, Hashable {
        /// Nominates the pair (the offerer).
        case controlling
        /// Follows the controlling agent's nomination (the answerer).
        case controlled
    }

    /// A STUN server, used to learn server-reflexive candidates.
    public struct STUNServer: Sendable, Hashable {
        /// IPv4 or IPv6 literal.
        public var host: String
        /// UDP port (3478 by default).
        public var port: UInt16
        /// Creates a STUN server entry.
        public init(host: String, port: UInt16 = 3478) {
            self.host = host
            self.port = port
        }
    }

    /// A TURN server with long-term credentials (RFC 8656), used to get relay candidates.
    public struct TURNServer: Sendable, Hashable {
        /// How the agent talks to the TURN server. The relayed transport is always UDP:
        /// libnice has no RFC 6062 TCP allocations.
        public enum Transport: Sendable, Hashable {
            case udp
            case tcp
            /// The server's TLS port. libnice (RFC 5245 mode) speaks plain TCP to it; servers that
            /// detect TLS by its first byte (ours, coturn) accept that. No encryption, no certificate check.
            case tls
        }
        /// IPv4 or IPv6 literal.
        public var host: String
        /// Port of the listener for ``transport`` (3478 for UDP/TCP, usually 5349 for TLS).
        public var port: UInt16
        /// Long-term credential user name (or TURN REST `expiry:id`).
        public var username: String
        /// Long-term credential password.
        public var password: String
        /// How to reach the server.
        public var transport: Transport
        /// Creates a TURN server entry.
        public init(host: String, port: UInt16 = 3478, username: String, password: String, transport: Transport = .udp) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.transport = transport
        }
    }

    /// Controlling or controlled. Defaults to controlling.
    public var role: Role = .controlling
    /// STUN server for server-reflexive candidates; none by default.
    public var stunServer: STUNServer?
    /// TURN servers for relay candidates, tried in order; none by default. At most
    /// ``maxTURNServers``: libnice refuses more.
    public var turnServers: [TURNServer] = []
    /// libnice's `NICE_CANDIDATE_MAX_TURN_SERVERS`: a relay candidate's priority holds the
    /// server's index in 3 bits, so `nice_agent_set_relay_info` fails for a ninth server.
    public static let maxTURNServers = 8
    /// Gather and use only relay candidates (hides the host's addresses from the peer).
    public var relayOnly: Bool = false
    /// IP literals of the local addresses to gather host candidates on. Empty means every
    /// interface libnice finds, which inside network namespaces or on multi-homed hosts
    /// is rarely what is wanted.
    public var localAddresses: [String] = []
    /// Local UDP port range for host candidates; any port when `nil`.
    public var portRange: ClosedRange<UInt16>?
    /// RFC 7675 consent freshness: stop sending when the peer stops answering checks.
    /// Required for WebRTC (RFC 8835 §4.2); on by default.
    public var consentFreshness: Bool = true
    /// Gather and use ICE-TCP candidates (RFC 6544). Off by default.
    public var iceTCP: Bool = false
    /// Trickle ICE (RFC 8838): candidates may arrive after checks start, and the agent
    /// does not fail a component until ``ICEAgent/endOfRemoteCandidates()``. On by default.
    public var trickle: Bool = true

    /// Creates a configuration; every field has a default.
    public init(
        role: Role = .controlling, stunServer: STUNServer? = nil, turnServers: [TURNServer] = [],
        relayOnly: Bool = false, localAddresses: [String] = [], portRange: ClosedRange<UInt16>? = nil,
        consentFreshness: Bool = true, iceTCP: Bool = false, trickle: Bool = true
    ) {
        self.role = role
        self.stunServer = stunServer
        self.turnServers = turnServers
        self.relayOnly = relayOnly
        self.localAddresses = localAddresses
        self.portRange = portRange
        self.consentFreshness = consentFreshness
        self.iceTCP = iceTCP
        self.trickle = trickle
    }
}
