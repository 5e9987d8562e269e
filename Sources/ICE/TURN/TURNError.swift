/// Why the TURN server could not start or stopped.
public struct TURNServerError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case configuration
        case bind
        case tls
    }

    public var code: Code
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}
