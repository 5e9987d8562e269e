import MeshCore
/// An error of the signaling protocol: a machine-readable code, a reason for humans and, when
/// known, the id of the message it answers (docs/protocol.md, "error").
public struct SignalingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `code` field of an `error` message.
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The frame is not valid JSON or not an object with the envelope fields.
        public static let badJSON = Code(rawValue: "bad-json")
        /// A binary frame: protocol v1 uses text frames only.
        public static let badFrame = Code(rawValue: "bad-frame")
        /// The frame is larger than `SignalingProtocol.maxFrameBytes`.
        public static let tooLarge = Code(rawValue: "too-large")
        /// The `type` is not one of protocol v1.
        public static let unknownType = Code(rawValue: "unknown-type")
        /// A field is missing or has an invalid value.
        public static let badField = Code(rawValue: "bad-field")
        /// Only `login` and `ping` are allowed before a successful login.
        public static let notLoggedIn = Code(rawValue: "not-logged-in")
        /// The login or a call-setup signature does not verify.
        public static let badSignature = Code(rawValue: "bad-signature")
        /// The name is bound to another key at this node.
        public static let nameTaken = Code(rawValue: "name-taken")
        /// `from` is not the name this connection logged in as.
        public static let forbidden = Code(rawValue: "forbidden")
        /// The recipient name was never seen at this node.
        public static let unknownRecipient = Code(rawValue: "unknown-recipient")
        /// The recipient is offline and the message kind is not stored (call setup).
        public static let unavailable = Code(rawValue: "unavailable")
        /// A call-setup message's `ts` is outside the freshness window (docs/protocol.md "Call setup").
        public static let stale = Code(rawValue: "stale")
        /// A call-setup message that was received before within the freshness window (a replay).
        public static let replayed = Code(rawValue: "replayed")
        /// The sender is not a member of the room.
        public static let notMember = Code(rawValue: "not-member")
        /// More frames than the per-connection rate limit allows.
        public static let rateLimited = Code(rawValue: "rate-limited")
        /// Another connection logged in with the same name and key.
        public static let replaced = Code(rawValue: "replaced")
        /// A peer's key differs from the one pinned for its name (client side, TOFU).
        public static let keyChanged = Code(rawValue: "key-changed")
        /// A node link whose address this node has not proven by dial-back: the node at that
        /// address holds another key, or the proof is not done yet (docs/protocol.md "Node links").
        public static let notProven = Code(rawValue: "not-proven")
        /// A store limit (docs/protocol.md "Limits") would be passed: nothing was stored.
        public static let storeFull = Code(rawValue: "store-full")
        /// The node's store has too many writes waiting for its disk (a burst faster than it
        /// commits): nothing was stored; send the same message again in a moment.
        public static let storeBusy = Code(rawValue: "store-busy")
        /// The node could not do what was asked (storage failure).
        public static let internalError = Code(rawValue: "internal")
        /// No answer in time (client side: the node did not acknowledge).
        public static let timeout = Code(rawValue: "timeout")
        /// The connection is closed and the operation cannot complete.
        public static let disconnected = Code(rawValue: "disconnected")
    }

    public var code: Code
    public var reason: String
    /// The id of the message this error answers, when it could be read.
    public var of: String?

    public init(_ code: Code, _ reason: String, of: String? = nil) {
        self.code = code
        self.reason = reason
        self.of = of
    }

    public var description: String { "\(code): \(reason)" }
}
