import STUN
/// One ICE candidate: a transport address an agent can receive on, as exchanged in SDP.
///
/// The SDP form is RFC 8839 §5.1:
/// `candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>
/// [raddr <address>] [rport <port>] *(<name> <value>)`, with `tcptype` from RFC 6544 §4.5.
/// ``init(sdp:)`` parses it (with or without the `a=` prefix) and ``sdp`` produces it.
public struct ICECandidate: Hashable, Sendable, CustomStringConvertible {
    /// The candidate type (RFC 8445 §5.1.1).
    public enum Kind: String, Hashable, Sendable {
        /// An address of a local interface.
        case host
        /// The address a STUN or TURN server saw the agent's request come from.
        case serverReflexive = "srflx"
        /// An address learned from a connectivity check (RFC 8445 §7.2.5.3.1).
        case peerReflexive = "prflx"
        /// An address allocated on a TURN server (RFC 8656).
        case relay
    }

    /// The transport protocol of the candidate.
    public enum Transport: String, Hashable, Sendable {
        /// ICE over UDP (RFC 8445).
        case udp = "UDP"
        /// ICE-TCP (RFC 6544).
        case tcp = "TCP"
    }

    /// The connection role of a TCP candidate (RFC 6544 §4.5).
    public enum TCPType: String, Hashable, Sendable {
        /// Opens the connection.
        case active
        /// Accepts the connection.
        case passive
        /// Simultaneous open.
        case so
    }

    /// An extension attribute after the fixed fields (RFC 8839 §5.1 `cand-extension`),
    /// kept so that a parsed candidate can be written back unchanged.
    public struct Extension: Hashable, Sendable {
        /// The attribute name, for example `generation`.
        public var name: String
        /// Its value, kept verbatim.
        public var value: String
        /// Creates an extension attribute.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Groups candidates that share a type, base and server (1–32 `ice-char`s).
    public var foundation: String
    /// The component ID (1 = RTP, or the only component with rtcp-mux).
    public var component: Int
    /// UDP, or TCP for ICE-TCP candidates.
    public var transport: Transport
    /// RFC 8445 §5.1.2 priority; higher is preferred.
    public var priority: UInt32
    /// An IPv4 or IPv6 literal, or a host name (such as a browser's mDNS `.local` name).
    public var address: String
    /// The port (9 for active TCP candidates, RFC 6544 §4.5).
    public var port: UInt16
    /// host, srflx, prflx or relay.
    public var kind: Kind
    /// The base (srflx, prflx) or mapped (relay) address, `raddr` in SDP.
    public var relatedAddress: String?
    /// The port of ``relatedAddress``, `rport` in SDP.
    public var relatedPort: UInt16?
    /// Set for TCP candidates.
    public var tcpType: TCPType?
    /// Other extension attributes, in order (for example `generation`, `ufrag`).
    public var extensions: [Extension]

    /// Creates a candidate from its fields.
    public init(
        foundation: String, component: Int = 1, transport: Transport = .udp, priority: UInt32,
        address: String, port: UInt16, kind: Kind,
        relatedAddress: String? = nil, relatedPort: UInt16? = nil,
        tcpType: TCPType? = nil, extensions: [Extension] = []
    ) {
        self.foundation = foundation
        self.component = component
        self.transport = transport
        self.priority = priority
        self.address = address
        self.port = port
        self.kind = kind
        self.relatedAddress = relatedAddress
        self.relatedPort = relatedPort
        self.tcpType = tcpType
        self.extensions = extensions
    }

    /// The RFC 8839 §5.1 form without the `a=` prefix, as carried in trickle messages
    /// and in `RTCIceCandidate.candidate`.
    public var sdp: String {
        var fields = [
            "candidate:\(foundation)", String(component), transport.rawValue, String(priority),
            address, String(port), "typ", kind.rawValue,
        ]
        if let relatedAddress { fields += ["raddr", relatedAddress] }
        if let relatedPort { fields += ["rport", String(relatedPort)] }
        if let tcpType { fields += ["tcptype", tcpType.rawValue] }
        for ext in extensions { fields += [ext.name, ext.value] }
        return fields.joined(separator: " ")
    }

    /// The SDP attribute line, `a=candidate:...`.
    public var sdpAttribute: String { "a=" + sdp }

    /// The ``sdp`` form.
    public var description: String { sdp }

    /// Parses an RFC 8839 §5.1 candidate attribute, with or without a leading `a=`.
    ///
    /// Transport and candidate type are matched case-insensitively (browsers send `udp`).
    /// - Throws: ``ICEError`` with code `invalidCandidate`, naming the bad field.
    public init(sdp: String) throws {
        var text = Substring(sdp)
        while let last = text.last, last.isNewline { text = text.dropLast() }
        if text.hasPrefix("a=") { text = text.dropFirst(2) }
        guard text.hasPrefix("candidate:") else {
            throw Self.invalid(sdp, "it does not start with 'candidate:'")
        }
        text = text.dropFirst("candidate:".count)
        let tokens = text.split(separator: " ", omittingEmptySubsequences: true)
        guard tokens.count >= 8 else {
            throw Self.invalid(sdp, "it has \(tokens.count) fields, at least 8 are required")
        }

        let foundation = String(tokens[0])
        guard (1...32).contains(foundation.utf8.count), foundation.utf8.allSatisfy(Self.isICEChar) else {
            throw Self.invalid(sdp, "foundation '\(foundation)' must be 1-32 of ALPHA / DIGIT / '+' / '/'")
        }
        guard tokens[1].utf8.count <= 3, let component = Int(tokens[1]), (1...256).contains(component) else {
            throw Self.invalid(sdp, "component ID '\(tokens[1])' must be 1-256")
        }
        guard let transport = Transport(rawValue: tokens[2].uppercased()) else {
            throw Self.invalid(sdp, "transport '\(tokens[2])' is neither UDP nor TCP")
        }
        guard tokens[3].utf8.count <= 10, let priority = UInt32(tokens[3]) else {
            throw Self.invalid(sdp, "priority '\(tokens[3])' is not an integer in 0...2^32-1")
        }
        let address = String(tokens[4])
        guard let port = UInt16(tokens[5]) else {
            throw Self.invalid(sdp, "port '\(tokens[5])' is not in 0...65535")
        }
        guard tokens[6] == "typ" else {
            throw Self.invalid(sdp, "expected 'typ' after the port, found '\(tokens[6])'")
        }
        guard let kind = Kind(rawValue: tokens[7].lowercased()) else {
            throw Self.invalid(sdp, "candidate type '\(tokens[7])' is not host, srflx, prflx or relay")
        }

        var relatedAddress: String?
        var relatedPort: UInt16?
        var tcpType: TCPType?
        var extensions: [Extension] = []
        var index = 8
        while index < tokens.count {
            guard index + 1 < tokens.count else {
                throw Self.invalid(sdp, "attribute '\(tokens[index])' has no value")
            }
            let name = tokens[index]
            let value = tokens[index + 1]
            switch name {
            case "raddr" where relatedAddress == nil && extensions.isEmpty:
                relatedAddress = String(value)
            case "rport" where relatedPort == nil && extensions.isEmpty:
                guard let port = UInt16(value) else {
                    throw Self.invalid(sdp, "rport '\(value)' is not in 0...65535")
                }
                relatedPort = port
            case "tcptype" where tcpType == nil:
                guard let type = TCPType(rawValue: value.lowercased()) else {
                    throw Self.invalid(sdp, "tcptype '\(value)' is not active, passive or so")
                }
                tcpType = type
            default:
                extensions.append(Extension(name: String(name), value: String(value)))
            }
            index += 2
        }
        if transport == .tcp && tcpType == nil {
            throw Self.invalid(sdp, "a TCP candidate needs a tcptype (RFC 6544 §4.5)")
        }

        self.init(
            foundation: foundation, component: component, transport: transport, priority: priority,
            address: address, port: port, kind: kind, relatedAddress: relatedAddress,
            relatedPort: relatedPort, tcpType: tcpType, extensions: extensions
        )
    }

    private static func isICEChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }

    private static func invalid(_ sdp: String, _ why: String) -> ICEError {
        ICEError(.invalidCandidate, "candidate '\(sdp.prefix(200))' is invalid: \(why)")
    }
}
