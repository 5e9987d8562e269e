/// `a=setup` roles (RFC 4145 §4): who starts the DTLS handshake (RFC 8842 §5.1).
public enum SDPSetupRole: String, Hashable, Sendable {
    case active, passive, actpass, holdconn
}

/// `a=fingerprint` (RFC 8122 §5): the hash of the DTLS certificate.
public struct SDPFingerprint: Hashable, Sendable, CustomStringConvertible {
    /// `sha-256` and the like, lowercase.
    public var hashFunction: String
    /// The digest bytes.
    public var digest: [UInt8]

    public init(hashFunction: String, digest: [UInt8]) {
        self.hashFunction = hashFunction
        self.digest = digest
    }

    /// Parses the value of `a=fingerprint` (RFC 8122 §5) without checking the hash function.
    public init(parsing value: Substring) throws(SDPError) {
        let words = value.split(separator: " ")
        guard words.count == 2 else { throw SDPError(.sdpSyntax, "a=fingerprint:\(value) is not '<hash function> <fingerprint>'") }
        hashFunction = words[0].lowercased()
        var digest: [UInt8] = []
        for pair in words[1].split(separator: ":", omittingEmptySubsequences: false) {
            guard pair.count == 2, let byte = UInt8(pair, radix: 16) else {
                throw SDPError(.sdpSyntax, "a=fingerprint: '\(pair)' is not a pair of hex digits (RFC 8122 §5)")
            }
            digest.append(byte)
        }
        self.digest = digest
    }

    /// Uppercase hex pairs separated by colons (RFC 8122 §5).
    public var hexDigest: String {
        digest.map { byte in
            let hex = String(byte, radix: 16, uppercase: true)
            return hex.count == 1 ? "0" + hex : hex
        }.joined(separator: ":")
    }

    public var description: String { "\(hashFunction) \(hexDigest)" }
}

/// `a=candidate` (RFC 8839 §5.1): one ICE candidate.
public struct SDPCandidate: Hashable, Sendable, CustomStringConvertible {
    public var foundation: String
    /// 1 for RTP; with rtcp-mux the only component.
    public var component: Int
    /// `udp` or `tcp` as written (browsers differ in case).
    public var transport: String
    public var priority: UInt32
    /// An IP address or an mDNS `.local` name.
    public var address: String
    public var port: Int
    /// `host`, `srflx`, `prflx` or `relay`.
    public var type: String
    public var relatedAddress: String?
    public var relatedPort: Int?
    /// Extension attributes after the type and related address (`tcptype`, `generation`, `ufrag`, `network-id`, …), in order.
    public var extensions: [(name: String, value: String)]

    public init(foundation: String, component: Int, transport: String, priority: UInt32, address: String, port: Int, type: String,
                relatedAddress: String? = nil, relatedPort: Int? = nil, extensions: [(name: String, value: String)] = []) {
        self.foundation = foundation
        self.component = component
        self.transport = transport
        self.priority = priority
        self.address = address
        self.port = port
        self.type = type
        self.relatedAddress = relatedAddress
        self.relatedPort = relatedPort
        self.extensions = extensions
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = value.split(separator: " ")
        guard words.count >= 8, words[6] == "typ" else {
            throw SDPError(.sdpSyntax, "a=candidate:\(value) is not '<foundation> <component> <transport> <priority> <address> <port> typ <type>'")
        }
        guard let component = Int(words[1]), (1...256).contains(component) else {
            throw SDPError(.sdpSyntax, "a=candidate: component '\(words[1])' is not 1–256")
        }
        guard let priority = UInt32(words[3]) else {
            throw SDPError(.sdpSyntax, "a=candidate: priority '\(words[3])' is not a 32-bit number")
        }
        guard let port = Int(words[5]), (0...65535).contains(port) else {
            throw SDPError(.sdpSyntax, "a=candidate: port '\(words[5])' is not 0–65535")
        }
        self.init(foundation: String(words[0]), component: component, transport: String(words[2]), priority: priority,
                  address: String(words[4]), port: port, type: String(words[7]))
        var index = 8
        while index < words.count {
            guard index + 1 < words.count else {
                throw SDPError(.sdpSyntax, "a=candidate: extension '\(words[index])' has no value")
            }
            let name = String(words[index])
            let value = String(words[index + 1])
            switch name {
            case "raddr": relatedAddress = value
            case "rport":
                guard let port = Int(value), (0...65535).contains(port) else {
                    throw SDPError(.sdpSyntax, "a=candidate: rport '\(value)' is not 0–65535")
                }
                relatedPort = port
            default: extensions.append((name, value))
            }
            index += 2
        }
    }

    public var description: String {
        var text = "\(foundation) \(component) \(transport) \(priority) \(address) \(port) typ \(type)"
        if let relatedAddress { text += " raddr \(relatedAddress)" }
        if let relatedPort { text += " rport \(relatedPort)" }
        for (name, value) in extensions { text += " \(name) \(value)" }
        return text
    }

    public static func == (lhs: SDPCandidate, rhs: SDPCandidate) -> Bool {
        lhs.description == rhs.description
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(description)
    }
}
