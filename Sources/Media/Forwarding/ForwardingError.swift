import MeshCore

/// The forwarding core's refusals, as ``MediaError`` codes: what a participant of a forwarded
/// call sent or asked for that the forwarder does not do.
extension LayerError.Code where Layer == MediaLayer {
    /// A participant sent for, or asked about, a stream that is not its own (RTP for an SSRC it
    /// did not declare; NACK, PLI or FIR for a stream the forwarder does not send it).
    public static let forbidden = Self("forbidden")
    /// A packet that does not parse (a truncated or lying RTCP length, an RTX packet without its
    /// original sequence number).
    public static let malformed = Self("malformed")
    /// A bound of the forwarded call was reached (participants, streams per participant).
    public static let limitReached = Self("limitReached")
    /// A participant id or SSRC that is already in the call.
    public static let conflict = Self("conflict")
    /// A participant id that is not in the call.
    public static let unknownParticipant = Self("unknownParticipant")
}
