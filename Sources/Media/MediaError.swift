/// An error from the media layer: a machine-readable ``Code`` and a reason a person can act on.
///
/// Parsers throw it for malformed input instead of trapping; codecs throw it when the C library
/// refuses a configuration or a frame.
public struct MediaError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case truncated, malformed, unsupportedVersion, invalidArgument, codecFailure, sdpSyntax, negotiationFailed, io, unavailable
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The input ended before a length or field it announced.
        public static let truncated = Code(.truncated)
        /// A field has a value the specification forbids.
        public static let malformed = Code(.malformed)
        /// The packet's version field is not one this implementation speaks (RTP/RTCP version 2).
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// A caller passed a value outside the allowed range (frame size, bitrate, extension id…).
        public static let invalidArgument = Code(.invalidArgument)
        /// libopus or libvpx returned an error.
        public static let codecFailure = Code(.codecFailure)
        /// A session description line does not follow RFC 8866's grammar.
        public static let sdpSyntax = Code(.sdpSyntax)
        /// An offer has nothing this side can answer with.
        public static let negotiationFailed = Code(.negotiationFailed)
        /// A media file could not be opened, read or written.
        public static let io = Code(.io)
        /// A system facility the operation needs is missing (an X display, the MIT-SHM extension…).
        public static let unavailable = Code(.unavailable)

        public var description: String { value.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// Why it failed, in words that point at the offending input or setting.
    public var reason: String

    /// Creates an error with a code and a reason.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "MediaError(\(code)): \(reason)" }
}
