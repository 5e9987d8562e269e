import SDP
/// Which side of the DTLS handshake this peer plays.
public enum DTLSRole: String, Sendable, Hashable {
    /// Sends the ClientHello (`a=setup:active`).
    case client
    /// Waits for the ClientHello (`a=setup:passive`).
    case server

    /// Resolves the role from the local and remote `a=setup` values of an offer/answer
    /// exchange (RFC 8842 §5.1, RFC 4145 §4.1).
    ///
    /// The offerer says `actpass` (RFC 8842 §5.2); the answerer picks `active` (it becomes
    /// the client, RFC 8842 §5.3's recommendation) or `passive`. Whoever ends up `active`
    /// is the DTLS client.
    ///
    /// - Throws: ``TransportError`` `invalidArgument` for combinations that leave the role
    ///   open or contradict each other (both `actpass`, both `active`, both `passive`,
    ///   either `holdconn`).
    public init(local: SDPSetupRole, remote: SDPSetupRole) throws(TransportError) {
        switch (local, remote) {
        case (.active, .passive), (.active, .actpass), (.actpass, .passive):
            self = .client
        case (.passive, .active), (.passive, .actpass), (.actpass, .active):
            self = .server
        default:
            throw TransportError(
                .invalidArgument,
                "a=setup:\(local.rawValue) locally with a=setup:\(remote.rawValue) from the peer leaves the DTLS role undecided or contradictory (RFC 8842 §5.1: exactly one side is active)")
        }
    }
}
