/// A STUN/TURN error code with its standard reason phrase (RFC 8489 §14.8, RFC 8656 §18,
/// RFC 6062 §6.3, RFC 8445 §7.3.1.1).
public struct STUNErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let tryAlternate = Self(rawValue: 300)
    public static let badRequest = Self(rawValue: 400)
    public static let unauthenticated = Self(rawValue: 401)
    public static let forbidden = Self(rawValue: 403)
    public static let mobilityForbidden = Self(rawValue: 405)
    public static let unknownAttribute = Self(rawValue: 420)
    public static let allocationMismatch = Self(rawValue: 437)
    public static let staleNonce = Self(rawValue: 438)
    public static let addressFamilyNotSupported = Self(rawValue: 440)
    public static let wrongCredentials = Self(rawValue: 441)
    public static let unsupportedTransportProtocol = Self(rawValue: 442)
    public static let peerAddressFamilyMismatch = Self(rawValue: 443)
    public static let connectionAlreadyExists = Self(rawValue: 446)
    public static let connectionTimeoutOrFailure = Self(rawValue: 447)
    public static let allocationQuotaReached = Self(rawValue: 486)
    public static let roleConflict = Self(rawValue: 487)
    public static let serverError = Self(rawValue: 500)
    public static let insufficientCapacity = Self(rawValue: 508)

    /// The reason phrase the RFCs suggest for this code.
    public var reasonPhrase: String {
        switch rawValue {
        case 300: "Try Alternate"
        case 400: "Bad Request"
        case 401: "Unauthenticated"
        case 403: "Forbidden"
        case 405: "Mobility Forbidden"
        case 420: "Unknown Attribute"
        case 437: "Allocation Mismatch"
        case 438: "Stale Nonce"
        case 440: "Address Family not Supported"
        case 441: "Wrong Credentials"
        case 442: "Unsupported Transport Protocol"
        case 443: "Peer Address Family Mismatch"
        case 446: "Connection Already Exists"
        case 447: "Connection Timeout or Failure"
        case 486: "Allocation Quota Reached"
        case 487: "Role Conflict"
        case 500: "Server Error"
        case 508: "Insufficient Capacity"
        default: "Error \(rawValue)"
        }
    }

    public var description: String { "\(rawValue) \(reasonPhrase)" }
}
