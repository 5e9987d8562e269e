/// The protocol of REQUESTED-TRANSPORT (RFC 8656 §18.8): the IANA protocol number of what the
/// relay carries between itself and the peers. Other numbers can arrive and are answered with
/// 442 Unsupported Transport Protocol (RFC 8656 §7.2).
public struct TURNTransportProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// UDP relaying (RFC 8656 §7.2).
    public static let udp = Self(rawValue: 17)
    /// TCP relaying (RFC 6062 §5.1), only over a TCP or TLS control connection.
    public static let tcp = Self(rawValue: 6)

    public var description: String {
        switch self {
        case .udp: "UDP (17)"
        case .tcp: "TCP (6)"
        default: "protocol \(rawValue)"
        }
    }
}
