/// Why bytes were rejected as a STUN message or ChannelData frame.
public struct STUNParseError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of malformation was found.
    public enum Code: String, Sendable {
        case truncated
        case notSTUN
        case badLength
        case badAttribute
        case badFingerprint
        case badAddress
        case badChannelNumber
        case tooLarge
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}
