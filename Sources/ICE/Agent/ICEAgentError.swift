/// An error from the ICE agent or from parsing a candidate, with a code to branch on and
/// a reason a person can act on.
public struct ICEAgentError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case invalidCandidate, invalidConfiguration, invalidCredentials
            case closed, notConnected, operationFailed
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// An `a=candidate:` line that does not follow RFC 8839 §5.1, or a candidate
        /// libnice cannot use (for example an mDNS `.local` address).
        public static let invalidCandidate = Code(.invalidCandidate)
        /// A configuration value the agent cannot use (for example a server given by
        /// name instead of IP address).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// ICE credentials outside RFC 8445 §5.3 (ufrag 4–256, pwd 22–256 characters).
        public static let invalidCredentials = Code(.invalidCredentials)
        /// The agent was closed.
        public static let closed = Code(.closed)
        /// Data was sent before a candidate pair was selected.
        public static let notConnected = Code(.notConnected)
        /// libnice refused the operation.
        public static let operationFailed = Code(.operationFailed)

        /// The code's name.
        public var description: String { value.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, in words that say what to change.
    public var reason: String

    /// Creates an error with a code and a reason.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Code and reason.
    public var description: String { "ICEAgentError.\(code): \(reason)" }
}
