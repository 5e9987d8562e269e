/// A STUN or TURN server URI (RFC 7064, RFC 7065): `stun:HOST[:PORT]`, `stuns:…`,
/// `turn:HOST[:PORT][?transport=udp|tcp]`, `turns:…`. The one type that parses and prints
/// them, for the welcome's ICE servers, node records, the agent's configuration and the CLI.
///
/// ```swift
/// let uri = try ICEServerURI(parsing: "turn:[2001:db8::1]:3478?transport=tcp")
/// uri.transport        // .tcp
/// uri.description      // "turn:[2001:db8::1]:3478?transport=tcp"
/// ```
public struct ICEServerURI: Sendable, Hashable, CustomStringConvertible {
    /// RFC 7064 §3.1 / RFC 7065 §3.1 schemes; the `s` forms run over TLS.
    public enum Scheme: String, Sendable, Hashable, CaseIterable {
        case stun, stuns, turn, turns

        /// Over TLS (`stuns`, `turns`).
        public var isSecure: Bool { self == .stuns || self == .turns }
        /// A relay (`turn`, `turns`) rather than a binding server.
        public var isTURN: Bool { self == .turn || self == .turns }
        /// RFC 7064 §3.2 / RFC 7065 §3.2: 3478, or 5349 over TLS.
        public var defaultPort: Int { isSecure ? 5349 : 3478 }
    }

    /// The transport towards the server (RFC 7065 §3.1 `transport`).
    public enum Transport: String, Sendable, Hashable {
        case udp, tcp
    }

    /// Longest URI accepted: these come from other nodes and clients.
    public static let maximumLength = 512

    public var scheme: Scheme
    /// An IP address (IPv6 without brackets) or a DNS name.
    public var host: String
    public var port: Int
    /// The transport; for `turn` it is written as `?transport=`, the others imply theirs.
    public var transport: Transport

    /// A URI from its parts; `transport` defaults to what the scheme implies (UDP for `stun` and
    /// `turn`, TCP for the TLS schemes).
    public init(scheme: Scheme, host: String, port: Int? = nil, transport: Transport? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port ?? scheme.defaultPort
        self.transport = transport ?? (scheme.isSecure ? .tcp : .udp)
    }

    /// Parses a URI; the scheme is case-insensitive, the port optional, an IPv6 host in brackets.
    /// - Throws: ``STUNError`` `badAttribute` naming what is wrong.
    public init(parsing text: String) throws(STUNError) {
        guard text.utf8.count <= Self.maximumLength else {
            throw STUNError(.badAttribute, "an ICE server URI of \(text.utf8.count) bytes is longer than \(Self.maximumLength)")
        }
        guard let colon = text.firstIndex(of: ":"), let scheme = Scheme(rawValue: text[..<colon].lowercased()) else {
            throw STUNError(.badAttribute, "'\(text)' is not a stun:, stuns:, turn: or turns: URI (RFC 7064, RFC 7065)")
        }
        var rest = text[text.index(after: colon)...]
        var transport: Transport?
        if let question = rest.firstIndex(of: "?") {
            // RFC 7065 §3.1: only turn/turns take a query, and its one parameter is the transport.
            let query = rest[rest.index(after: question)...]
            guard scheme.isTURN, query.lowercased().hasPrefix("transport="),
                  let value = Transport(rawValue: query.dropFirst("transport=".count).lowercased()) else {
                throw STUNError(.badAttribute, "'\(text)': the only query is ?transport=udp or tcp, on turn: and turns: URIs")
            }
            guard !(scheme == .turns && value == .udp) else {
                throw STUNError(.badAttribute, "'\(text)': turns: runs over TCP (TLS), not UDP")
            }
            transport = value
            rest = rest[..<question]
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw STUNError(.badAttribute, "'\(text)': IPv6 host without ']'") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw STUNError(.badAttribute, "'\(text)': unexpected '\(after)' after the host")
            }
        } else if let portColon = rest.lastIndex(of: ":") {
            host = rest[..<portColon]
            portText = rest[rest.index(after: portColon)...]
        } else {
            host = rest
        }
        // RFC 3986 §3.2.2: an IPv6 address only in brackets; otherwise an IPv4 address or a
        // name of unreserved characters (percent-encoded names are not something we resolve).
        let bracketed = rest.hasPrefix("[")
        let usable = bracketed
            ? host.contains(":") && IPAddress(string: String(host)) != nil
            : !host.isEmpty && host.unicodeScalars.allSatisfy { Self.nameCharacters.contains($0) }
        guard usable else {
            throw STUNError(.badAttribute, "'\(text)': '\(host)' is not an IPv4 address, a name, or an IPv6 address in brackets")
        }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65_535).contains(value) else {
                throw STUNError(.badAttribute, "'\(text)': port '\(portText)' is not 1 to 65535")
            }
            port = value
        }
        self.init(scheme: scheme, host: String(host), port: port, transport: transport)
    }

    /// Parses `text`, or `nil` when it is not a usable URI.
    public init?(_ text: String) {
        guard let parsed = try? ICEServerURI(parsing: text) else { return nil }
        self = parsed
    }

    private static let nameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~".unicodeScalars)

    /// Whether ``host`` is an IP address (not a name that needs resolving).
    public var hostIsNumeric: Bool { IPAddress(string: host) != nil }

    /// `host:port`, an IPv6 host in brackets.
    public var hostPort: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The canonical text: lower-case scheme, the port always, and `?transport=` on TURN URIs.
    public var description: String {
        scheme.isTURN ? "\(scheme.rawValue):\(hostPort)?transport=\(transport.rawValue)" : "\(scheme.rawValue):\(hostPort)"
    }
}
