internal import CSRTP
public import NIOCore

/// libsrtp2 is initialised once per process (`srtp_init` registers its crypto kernel).
private let srtpLibraryStatus: UInt32 = srtp_init().rawValue

/// One libsrtp2 session (`srtp_t`) for one direction of one DTLS-SRTP association: it
/// protects both SRTP and SRTCP we send, or unprotects both SRTP and SRTCP we receive
/// (RFC 3711 §3.3, §3.4; AEAD per RFC 7714 §§7–9). Streams are created per SSRC on first use
/// (libsrtp's `ssrc_any_outbound` / `ssrc_any_inbound` templates).
///
/// Inbound sessions keep RFC 3711 §3.3.2 replay lists, for SRTP with a window of
/// ``replayWindow`` packets and for SRTCP with libsrtp's 128-index window; a replayed or
/// too-old packet throws ``TransportError/Code-swift.struct/replayed``. Outbound sessions
/// refuse to protect the same RTP sequence number twice (`allow_repeat_tx` off).
///
/// Not thread-safe: libsrtp2 keeps per-stream state (rollover counter, replay list) without
/// locks. Keep each session behind one lock; ``DTLSSRTPTransport`` does.
public final class SRTPSession {
    /// Which way a session works.
    public enum Direction: Sendable, Hashable {
        /// Protects what we send.
        case outbound
        /// Unprotects what we receive.
        case inbound
    }

    /// SRTP replay window (packets) for inbound sessions; RFC 3711 §3.3.2 asks for at least 64.
    public static let replayWindow = 1024

    /// Room libsrtp2 may append: the longest tag plus the SRTCP index and an MKI
    /// (`SRTP_MAX_TRAILER_LEN` and the SRTCP E-flag/index word).
    static let trailerCapacity = 16 + 128 + 4

    /// The profile the session was made for.
    public let profile: SRTPProfile
    /// Which way it works.
    public let direction: Direction

    private let session: OpaquePointer

    /// Creates a session keyed with a master key followed by its master salt.
    /// - Throws: ``TransportError`` `invalidArgument` for a key of the wrong length,
    ///   `srtpFailure` when libsrtp2 refuses the policy.
    public init(profile: SRTPProfile, keyAndSalt: [UInt8], direction: Direction) throws(TransportError) {
        guard srtpLibraryStatus == srtp_err_status_ok.rawValue else {
            throw TransportError(.srtpFailure, "libsrtp2 failed to initialise (srtp_init returned \(srtpLibraryStatus))")
        }
        guard keyAndSalt.count == profile.masterKeyLength + profile.masterSaltLength else {
            throw TransportError(.invalidArgument, "\(profile.openSSLName) takes \(profile.masterKeyLength + profile.masterSaltLength) bytes of key and salt, got \(keyAndSalt.count)")
        }
        var policy = srtp_policy_t()
        switch profile {
        case .aes128CMHMACSHA1_80:
            srtp_crypto_policy_set_rtp_default(&policy.rtp)
            srtp_crypto_policy_set_rtcp_default(&policy.rtcp)
        case .aeadAES128GCM:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtp)
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy.rtcp)
        }
        policy.ssrc.type = direction == .outbound ? ssrc_any_outbound : ssrc_any_inbound
        policy.window_size = UInt(Self.replayWindow)
        policy.allow_repeat_tx = 0
        var key = keyAndSalt
        var created: OpaquePointer?
        let status = key.withUnsafeMutableBufferPointer { buffer in
            policy.key = buffer.baseAddress
            return srtp_create(&created, &policy)
        }
        // libsrtp2 copied the key into its own context: wipe ours.
        for index in key.indices { key[index] = 0 }
        guard status == srtp_err_status_ok, let created else {
            throw TransportError(.srtpFailure, "libsrtp2 refused the \(profile.openSSLName) policy (srtp_create error \(status.rawValue))")
        }
        self.session = created
        self.profile = profile
        self.direction = direction
    }

    deinit {
        srtp_dealloc(session)
    }

    /// Encrypts and authenticates an RTP packet (RFC 3711 §3.3; RFC 7714 §8 for GCM). A packet
    /// passed as its last use (its buffer not shared) is protected in its own storage.
    public func protectRTP(_ packet: consuming ByteBuffer) throws(TransportError) -> ByteBuffer {
        var packet = packet
        try protectRTP(&packet)
        return packet
    }

    /// Checks and decrypts an SRTP packet; throws `authenticationFailed` or `replayed`.
    public func unprotectRTP(_ packet: consuming ByteBuffer) throws(TransportError) -> ByteBuffer {
        var packet = packet
        try unprotectRTP(&packet)
        return packet
    }

    /// Encrypts and authenticates a (compound) RTCP packet (RFC 3711 §3.4; RFC 7714 §9).
    public func protectRTCP(_ packet: consuming ByteBuffer) throws(TransportError) -> ByteBuffer {
        var packet = packet
        try protectRTCP(&packet)
        return packet
    }

    /// Checks and decrypts an SRTCP packet; throws `authenticationFailed` or `replayed`.
    public func unprotectRTCP(_ packet: consuming ByteBuffer) throws(TransportError) -> ByteBuffer {
        var packet = packet
        try unprotectRTCP(&packet)
        return packet
    }

    /// ``protectRTP(_:)`` in place: the buffer grows by the tag.
    public func protectRTP(_ packet: inout ByteBuffer) throws(TransportError) {
        try transform(&packet, operation: "protect RTP", expected: .outbound) { srtp_protect($0, $1, $2) }
    }

    /// ``unprotectRTP(_:)`` in place: the buffer shrinks to the clear packet. After a failure its
    /// bytes are undefined (libsrtp2 may have decrypted some of them).
    public func unprotectRTP(_ packet: inout ByteBuffer) throws(TransportError) {
        try transform(&packet, operation: "unprotect SRTP", expected: .inbound) { srtp_unprotect($0, $1, $2) }
    }

    /// ``protectRTCP(_:)`` in place.
    public func protectRTCP(_ packet: inout ByteBuffer) throws(TransportError) {
        try transform(&packet, operation: "protect RTCP", expected: .outbound) { srtp_protect_rtcp($0, $1, $2) }
    }

    /// ``unprotectRTCP(_:)`` in place.
    public func unprotectRTCP(_ packet: inout ByteBuffer) throws(TransportError) {
        try transform(&packet, operation: "unprotect SRTCP", expected: .inbound) { srtp_unprotect_rtcp($0, $1, $2) }
    }

    /// Runs libsrtp2 on the packet's own bytes: it works in place and, protecting, writes up to
    /// ``trailerCapacity`` bytes past the packet, so that much room is made first (no copy when
    /// the buffer has it, as `RTPPacket.serialized` leaves). A buffer the caller still shares is
    /// copied once by ByteBuffer's copy on write.
    private func transform(
        _ packet: inout ByteBuffer, operation: String, expected: Direction,
        _ call: (OpaquePointer, UnsafeMutableRawPointer, UnsafeMutablePointer<Int32>) -> srtp_err_status_t
    ) throws(TransportError) {
        guard direction == expected else {
            throw TransportError(.invalidArgument, "cannot \(operation) with an \(direction) session")
        }
        let count = packet.readableBytes
        guard count <= 65_535 else { throw TransportError(.invalidArgument, "a \(count)-byte packet is larger than any UDP datagram") }
        guard count > 0 else { throw Self.error(srtp_err_status_bad_param, operation: operation, count: count) }
        if expected == .outbound { packet.reserveCapacity(minimumWritableBytes: Self.trailerCapacity) }
        var length = Int32(count)
        let start = packet.readerIndex
        let session = self.session
        let status = packet.withVeryUnsafeMutableBytes { raw in call(session, raw.baseAddress! + start, &length) }
        guard status == srtp_err_status_ok else {
            throw Self.error(status, operation: operation, count: count)
        }
        packet.moveWriterIndex(to: start + Int(length))
    }

    private static func error(_ status: srtp_err_status_t, operation: String, count: Int) -> TransportError {
        switch status {
        case srtp_err_status_auth_fail:
            TransportError(.authenticationFailed, "\(operation): the authentication tag of a \(count)-byte packet does not verify (RFC 3711 §3.3)")
        case srtp_err_status_replay_fail, srtp_err_status_replay_old:
            TransportError(.replayed, "\(operation): the packet was already received or is older than the replay window (RFC 3711 §3.3.2)")
        case srtp_err_status_bad_param:
            TransportError(.srtpFailure, "\(operation): libsrtp2 rejects a \(count)-byte packet as malformed")
        default:
            TransportError(.srtpFailure, "\(operation) failed with libsrtp2 status \(status.rawValue) for a \(count)-byte packet")
        }
    }
}
