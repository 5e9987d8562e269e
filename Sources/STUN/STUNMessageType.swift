/// A STUN method (RFC 8489 §5, RFC 8656 §17, RFC 6062 §6.1).
public struct STUNMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue & 0x0FFF }

    public static let binding = STUNMethod(rawValue: 0x001)
    public static let allocate = STUNMethod(rawValue: 0x003)
    public static let refresh = STUNMethod(rawValue: 0x004)
    public static let send = STUNMethod(rawValue: 0x006)
    public static let data = STUNMethod(rawValue: 0x007)
    public static let createPermission = STUNMethod(rawValue: 0x008)
    public static let channelBind = STUNMethod(rawValue: 0x009)
    public static let connect = STUNMethod(rawValue: 0x00A)
    public static let connectionBind = STUNMethod(rawValue: 0x00B)
    public static let connectionAttempt = STUNMethod(rawValue: 0x00C)

    public var description: String {
        switch self {
        case .binding: "Binding"
        case .allocate: "Allocate"
        case .refresh: "Refresh"
        case .send: "Send"
        case .data: "Data"
        case .createPermission: "CreatePermission"
        case .channelBind: "ChannelBind"
        case .connect: "Connect"
        case .connectionBind: "ConnectionBind"
        case .connectionAttempt: "ConnectionAttempt"
        default: "Method(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// The class of a STUN message (RFC 8489 §5).
public enum STUNClass: UInt8, Sendable {
    case request = 0b00
    case indication = 0b01
    case successResponse = 0b10
    case errorResponse = 0b11
}

/// Method and class packed into the 14-bit message type (RFC 8489 §5, figure 3).
public struct STUNMessageType: Hashable, Sendable, CustomStringConvertible {
    public var method: STUNMethod
    public var messageClass: STUNClass

    public init(_ method: STUNMethod, _ messageClass: STUNClass) {
        self.method = method
        self.messageClass = messageClass
    }

    /// Decodes the 16-bit type field; the two most significant bits must be zero.
    public init?(wire: UInt16) {
        guard wire & 0xC000 == 0 else { return nil }
        let m = (wire & 0x000F) | ((wire & 0x00E0) >> 1) | ((wire & 0x3E00) >> 2)
        let c = ((wire & 0x0010) >> 4) | ((wire & 0x0100) >> 7)
        self.init(STUNMethod(rawValue: m), STUNClass(rawValue: UInt8(c))!)
    }

    public var wire: UInt16 {
        let m = method.rawValue
        let c = UInt16(messageClass.rawValue)
        return (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }

    public var description: String {
        switch messageClass {
        case .request: "\(method) request"
        case .indication: "\(method) indication"
        case .successResponse: "\(method) success response"
        case .errorResponse: "\(method) error response"
        }
    }
}
