/// A STUN attribute type. Values below 0x8000 are comprehension-required (RFC 8489 §14).
public struct STUNAttributeType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// RFC 8489 §14: a receiver must understand these or reject the request with 420.
    public var isComprehensionRequired: Bool { rawValue < 0x8000 }

    // RFC 8489 §18.3
    public static let mappedAddress = Self(rawValue: 0x0001)
    public static let username = Self(rawValue: 0x0006)
    public static let messageIntegrity = Self(rawValue: 0x0008)
    public static let errorCode = Self(rawValue: 0x0009)
    public static let unknownAttributes = Self(rawValue: 0x000A)
    public static let realm = Self(rawValue: 0x0014)
    public static let nonce = Self(rawValue: 0x0015)
    public static let messageIntegritySHA256 = Self(rawValue: 0x001C)
    public static let passwordAlgorithm = Self(rawValue: 0x001D)
    public static let userhash = Self(rawValue: 0x001E)
    public static let xorMappedAddress = Self(rawValue: 0x0020)
    public static let passwordAlgorithms = Self(rawValue: 0x8002)
    public static let alternateDomain = Self(rawValue: 0x8003)
    public static let software = Self(rawValue: 0x8022)
    public static let alternateServer = Self(rawValue: 0x8023)
    public static let fingerprint = Self(rawValue: 0x8028)
    // RFC 8656 §18
    public static let channelNumber = Self(rawValue: 0x000C)
    public static let lifetime = Self(rawValue: 0x000D)
    public static let xorPeerAddress = Self(rawValue: 0x0012)
    public static let data = Self(rawValue: 0x0013)
    public static let xorRelayedAddress = Self(rawValue: 0x0016)
    public static let requestedAddressFamily = Self(rawValue: 0x0017)
    public static let evenPort = Self(rawValue: 0x0018)
    public static let requestedTransport = Self(rawValue: 0x0019)
    public static let dontFragment = Self(rawValue: 0x001A)
    public static let reservationToken = Self(rawValue: 0x0022)
    public static let additionalAddressFamily = Self(rawValue: 0x8000)
    public static let addressErrorCode = Self(rawValue: 0x8001)
    public static let icmp = Self(rawValue: 0x8004)
    // RFC 6062 §6.2
    public static let connectionID = Self(rawValue: 0x002A)
    // RFC 8445 §16.1
    public static let priority = Self(rawValue: 0x0024)
    public static let useCandidate = Self(rawValue: 0x0025)
    public static let iceControlled = Self(rawValue: 0x8029)
    public static let iceControlling = Self(rawValue: 0x802A)
    // RFC 5780 §7
    public static let changeRequest = Self(rawValue: 0x0003)
    public static let padding = Self(rawValue: 0x0026)
    public static let responsePort = Self(rawValue: 0x0027)
    public static let responseOrigin = Self(rawValue: 0x802B)
    public static let otherAddress = Self(rawValue: 0x802C)

    public var description: String {
        switch self {
        case .mappedAddress: "MAPPED-ADDRESS"
        case .username: "USERNAME"
        case .messageIntegrity: "MESSAGE-INTEGRITY"
        case .errorCode: "ERROR-CODE"
        case .unknownAttributes: "UNKNOWN-ATTRIBUTES"
        case .realm: "REALM"
        case .nonce: "NONCE"
        case .messageIntegritySHA256: "MESSAGE-INTEGRITY-SHA256"
        case .passwordAlgorithm: "PASSWORD-ALGORITHM"
        case .userhash: "USERHASH"
        case .xorMappedAddress: "XOR-MAPPED-ADDRESS"
        case .passwordAlgorithms: "PASSWORD-ALGORITHMS"
        case .alternateDomain: "ALTERNATE-DOMAIN"
        case .software: "SOFTWARE"
        case .alternateServer: "ALTERNATE-SERVER"
        case .fingerprint: "FINGERPRINT"
        case .channelNumber: "CHANNEL-NUMBER"
        case .lifetime: "LIFETIME"
        case .xorPeerAddress: "XOR-PEER-ADDRESS"
        case .data: "DATA"
        case .xorRelayedAddress: "XOR-RELAYED-ADDRESS"
        case .requestedAddressFamily: "REQUESTED-ADDRESS-FAMILY"
        case .evenPort: "EVEN-PORT"
        case .requestedTransport: "REQUESTED-TRANSPORT"
        case .dontFragment: "DONT-FRAGMENT"
        case .reservationToken: "RESERVATION-TOKEN"
        case .additionalAddressFamily: "ADDITIONAL-ADDRESS-FAMILY"
        case .addressErrorCode: "ADDRESS-ERROR-CODE"
        case .icmp: "ICMP"
        case .connectionID: "CONNECTION-ID"
        case .priority: "PRIORITY"
        case .useCandidate: "USE-CANDIDATE"
        case .iceControlled: "ICE-CONTROLLED"
        case .iceControlling: "ICE-CONTROLLING"
        case .changeRequest: "CHANGE-REQUEST"
        case .padding: "PADDING"
        case .responsePort: "RESPONSE-PORT"
        case .responseOrigin: "RESPONSE-ORIGIN"
        case .otherAddress: "OTHER-ADDRESS"
        default: "0x" + String(rawValue, radix: 16)
        }
    }

    /// The attributes this implementation understands; any other comprehension-required
    /// attribute in a request earns a 420 (RFC 8489 §6.3.1).
    public static let understood: Set<STUNAttributeType> = [
        .mappedAddress, .username, .messageIntegrity, .errorCode, .unknownAttributes, .realm, .nonce,
        .messageIntegritySHA256, .passwordAlgorithm, .userhash, .xorMappedAddress, .channelNumber,
        .lifetime, .xorPeerAddress, .data, .xorRelayedAddress, .requestedAddressFamily, .evenPort,
        .requestedTransport, .dontFragment, .reservationToken, .connectionID, .priority, .useCandidate,
        .changeRequest, .padding,
    ]
}
