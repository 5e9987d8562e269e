/// Which error a frame that does not decode earns (docs/protocol.md "Login", "Errors"): the
/// connection's state outranks the frame's content, so that a client learns first what it may
/// not do at all, then what is wrong with how it did it.
extension SignalingHub {
    /// Types a client may send before it logged in (a node may also send `link` and `prove`).
    static let beforeLogin: Set<String> = ["login", "ping", "link", "prove", "device-claim"]
    /// Types only a node sends; a client that sends one gets `forbidden`, whatever its body.
    static let nodeOnly: Set<String> = Set([MessageType.challenge, .welcome, .presence, .room, .error, .timeout, .link, .linked,
                                            .mesh, .dialback, .dialbackResult, .prove, .proof,
                                            .deviceRequest, .deviceAdded, .answeredElsewhere, .roomCallState].map(\.rawValue))

    /// The error for a frame `SignalingCodec` refused with `error`: `not-logged-in` for anything
    /// but a login (or ping) before login, also an unknown type or a bad body; `forbidden` for a
    /// node-only type from a logged-in client, also with a bad body; otherwise `error` itself.
    /// Frames that are not JSON objects keep their `bad-json` or `too-large`.
    func decodeRefusal(_ error: SignalingError, text: String, session: Session) -> SignalingError {
        guard session.node == nil, error.code == .unknownType || error.code == .badField,
              let type = SignalingCodec.peek(text)?.type else { return error }
        if session.name == nil, !Self.beforeLogin.contains(type) {
            return SignalingError(.notLoggedIn, "log in first: answer the challenge with a login", of: error.of)
        }
        if session.name != nil, Self.nodeOnly.contains(type) {
            return SignalingError(.forbidden, "only the node sends \(type) messages", of: error.of)
        }
        return error
    }
}
