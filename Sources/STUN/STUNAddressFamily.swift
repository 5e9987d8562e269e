/// The address family byte of STUN and TURN attributes: the address attributes (MAPPED-ADDRESS,
/// XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS; RFC 8489 §14.1, §14.2),
/// REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.6, §18.11) and
/// ADDRESS-ERROR-CODE (RFC 8656 §18.12). Other values can arrive and are refused by whoever
/// reads them.
public struct STUNAddressFamily: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let ipv4 = Self(rawValue: 0x01)
    public static let ipv6 = Self(rawValue: 0x02)

    public var description: String {
        switch self {
        case .ipv4: "IPv4"
        case .ipv6: "IPv6"
        default: "address family \(rawValue)"
        }
    }
}
