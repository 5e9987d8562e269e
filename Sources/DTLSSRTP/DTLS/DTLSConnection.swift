internal import COpenSSLShims
internal import COpenSSL
import NIOCore
import SDP

/// What one step of a ``DTLSConnection`` produced.
struct DTLSOutput {
    /// Datagrams to send to the peer, in order.
    var datagrams: [ByteBuffer] = []
    /// The handshake completed in this step; SRTP keys can be exported.
    var handshakeCompleted = false
    /// The peer sent close_notify (RFC 5246 §7.2.1).
    var closedByPeer = false
    /// The session failed in this step; nothing more will work.
    var failure: TransportError?
}

/// Holds what the certificate callback needs; the callback gets it as an unretained pointer,
/// and the connection keeps it alive for as long as the `SSL_CTX` can call back.
private final class FingerprintVerifier {
    let expected: SDPFingerprint
    var failure: TransportError?
    var verified = false

    init(expected: SDPFingerprint) { self.expected = expected }

    func check(_ certificate: OpaquePointer?) -> Bool {
        guard let certificate else {
            failure = TransportError(.fingerprintMismatch, "the peer sent no certificate; expected one with fingerprint \(expected)")
            return false
        }
        let actual: SDPFingerprint
        do {
            actual = try SDPFingerprint.of(certificate: certificate, hashFunction: expected.hashFunction)
        } catch {
            failure = error
            return false
        }
        var difference: UInt8 = 0
        for (a, b) in zip(actual.digest, expected.digest) { difference |= a ^ b }
        guard difference == 0, actual.digest.count == expected.digest.count else {
            failure = TransportError(
                .fingerprintMismatch,
                "the peer's DTLS certificate has fingerprint \(actual) but its signed SDP announced \(expected) (RFC 8122 §5): refusing the session")
            return false
        }
        verified = true
        return true
    }
}

/// A DTLS 1.2 endpoint (RFC 6347) over OpenSSL with memory BIOs: sans-IO, it turns received
/// datagrams and timer ticks into datagrams to send and state changes. It knows no socket:
/// ``DTLSSRTPTransport`` moves its datagrams over the ICE component.
///
/// - The protocol is pinned to DTLS 1.2 (min = max = `DTLS1_2_VERSION`). A DTLS 1.3 client
///   offers 1.2 in `legacy_version` and `supported_versions` (RFC 9147 §5.3), so it gets a
///   1.2 ServerHello and completes with us on 1.2.
/// - The peer must present a certificate (`SSL_VERIFY_PEER | FAIL_IF_NO_PEER_CERT`; as server
///   we send a CertificateRequest) and it is trusted only if its hash equals the
///   fingerprint from the peer's signed SDP (RFC 8842 §5.1, RFC 8827 §6.5). A mismatch aborts
///   the handshake with a `bad_certificate` alert and ``TransportError/Code-swift.struct/fingerprintMismatch``.
/// - `use_srtp` offers the profiles given, in order of preference (RFC 5764 §4.1.1).
/// - Retransmission follows OpenSSL's RFC 6347 §4.2.4 timer (1 s doubling to 60 s);
///   ``handleTimeout()`` must be called when ``retransmissionTimeout`` runs out.
///
/// Not thread-safe; one owner at a time (the transport keeps it behind a lock). Owns its
/// `SSL_CTX` and `SSL` (which owns both BIOs) and frees them in `deinit`.
final class DTLSConnection {
    enum State: Equatable {
        case idle, handshaking, connected, closed
        case failed(TransportError)
    }

    /// Cipher suites for DTLS 1.2: ECDHE only (forward secrecy), AEAD first; the RSA ones are
    /// there for peers with RSA certificates when we are the client.
    static let cipherList = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA"

    let role: DTLSRole
    let mtu: Int
    private(set) var state: State = .idle

    private let context: OpaquePointer
    private let ssl: OpaquePointer
    private let writeBIO: OpaquePointer
    private let readBIO: OpaquePointer
    private let verifier: FingerprintVerifier
    private let certificate: DTLSCertificate

    /// Sets up a connection; nothing is sent until ``start()``.
    /// - Parameters:
    ///   - remoteFingerprint: the peer's `a=fingerprint`; its hash function decides how the
    ///     peer's certificate is hashed.
    ///   - profiles: `use_srtp` profiles in order of preference; at least one.
    ///   - mtu: largest datagram we send (1200 keeps DTLS flights clear of fragmentation on
    ///     any path, including TURN and IPv6 tunnels).
    init(certificate: DTLSCertificate, role: DTLSRole, remoteFingerprint: SDPFingerprint,
         profiles: [SRTPProfile], mtu: Int = 1200) throws(TransportError) {
        try remoteFingerprint.validate()
        guard !profiles.isEmpty else { throw TransportError(.invalidArgument, "offer at least one SRTP profile") }
        guard (256...65_507).contains(mtu) else { throw TransportError(.invalidArgument, "MTU \(mtu) is outside 256-65507") }
        ERR_clear_error()
        guard let context = SSL_CTX_new(DTLS_method()) else {
            throw TransportError(.handshakeFailed, "OpenSSL could not create a DTLS context: \(Self.drainErrors())")
        }
        let verifier = FingerprintVerifier(expected: remoteFingerprint)
        func fail(_ what: String) -> TransportError {
            TransportError(.handshakeFailed, "\(what): \(Self.drainErrors())")
        }
        guard COpenSSLShims_SSL_CTX_use_dtls12_only(UnsafeMutableRawPointer(context)) == 1,
            SSL_CTX_set_cipher_list(context, Self.cipherList) == 1,
            SSL_CTX_use_certificate(context, certificate.certificate) == 1,
            SSL_CTX_use_PrivateKey(context, certificate.privateKey) == 1,
            // Returns 0 on success, unlike most of OpenSSL.
            SSL_CTX_set_tlsext_use_srtp(context, profiles.map(\.openSSLName).joined(separator: ":")) == 0
        else {
            let error = fail("OpenSSL refused the DTLS configuration")
            SSL_CTX_free(context)
            throw error
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        // Replaces chain building: WebRTC certificates are self-signed and trusted by hash alone.
        SSL_CTX_set_cert_verify_callback(context, { store, argument in
            guard let store, let argument else { return 0 }
            let verifier = Unmanaged<FingerprintVerifier>.fromOpaque(argument).takeUnretainedValue()
            if verifier.check(X509_STORE_CTX_get0_cert(store)) { return 1 }
            X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED)
            return 0
        }, Unmanaged.passUnretained(verifier).toOpaque())

        guard let ssl = SSL_new(context), let readBIO = BIO_new(BIO_s_mem()), let writeBIO = BIO_new(BIO_s_mem()) else {
            let error = fail("OpenSSL could not create a DTLS session")
            SSL_CTX_free(context)
            throw error
        }
        // An empty memory BIO means "no datagram yet", not end of file.
        COpenSSLShims_BIO_set_mem_eof_return(UnsafeMutableRawPointer(readBIO), -1)
        COpenSSLShims_BIO_set_mem_eof_return(UnsafeMutableRawPointer(writeBIO), -1)
        SSL_set_bio(ssl, readBIO, writeBIO)
        COpenSSLShims_SSL_set_fixed_mtu(UnsafeMutableRawPointer(ssl), mtu - 28)
        COpenSSLShims_DTLS_use_short_timer(UnsafeMutableRawPointer(ssl))
        switch role {
        case .client: SSL_set_connect_state(ssl)
        case .server: SSL_set_accept_state(ssl)
        }
        self.context = context
        self.ssl = ssl
        self.readBIO = readBIO
        self.writeBIO = writeBIO
        self.verifier = verifier
        self.certificate = certificate
        self.role = role
        self.mtu = mtu
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs
        SSL_CTX_free(context)
    }

    /// Starts the handshake: the client sends its ClientHello; the server waits for one.
    func start() -> DTLSOutput {
        guard state == .idle else { return DTLSOutput() }
        state = .handshaking
        return role == .client ? advanceHandshake() : DTLSOutput()
    }

    /// Feeds one received DTLS datagram (RFC 7983: first byte 20–63).
    func receive(_ datagram: ByteBuffer) -> DTLSOutput {
        switch state {
        case .closed, .failed: return DTLSOutput()
        case .idle:
            // A server may see the ClientHello before the transport started it.
            state = .handshaking
        case .handshaking, .connected: break
        }
        datagram.withUnsafeReadableBytes { bytes in
            _ = BIO_write(readBIO, bytes.baseAddress, Int32(bytes.count))
        }
        return state == .connected ? readApplicationData() : advanceHandshake()
    }

    /// Time left until the next retransmission, or `nil` when no timer runs.
    var retransmissionTimeout: Duration? {
        guard state == .handshaking else { return nil }
        var seconds = 0
        var microseconds = 0
        guard COpenSSLShims_DTLS_get_timeout(UnsafeMutableRawPointer(ssl), &seconds, &microseconds) == 1 else { return nil }
        return .seconds(seconds) + .microseconds(microseconds)
    }

    /// Retransmits the last flight if its timer ran out (RFC 6347 §4.2.4).
    func handleTimeout() -> DTLSOutput {
        guard state == .handshaking else { return DTLSOutput() }
        ERR_clear_error()
        if COpenSSLShims_DTLS_handle_timeout(UnsafeMutableRawPointer(ssl)) < 0 {
            return fail(TransportError(.handshakeTimeout, "the peer did not answer DTLS retransmissions: \(Self.drainErrors())"))
        }
        var output = DTLSOutput()
        output.datagrams = drainWrites()
        return output
    }

    /// Sends close_notify (RFC 5246 §7.2.1) and stops. Idempotent.
    func close() -> DTLSOutput {
        var output = DTLSOutput()
        if state == .connected {
            ERR_clear_error()
            _ = SSL_shutdown(ssl)
            output.datagrams = drainWrites()
        }
        if case .failed = state {} else { state = .closed }
        return output
    }

    /// The profile the handshake negotiated, once connected.
    var selectedProfile: SRTPProfile? {
        state == .connected ? negotiatedProfile() : nil
    }

    /// Whether the negotiated protocol is DTLS 1.2.
    var negotiatedDTLS12: Bool { COpenSSLShims_SSL_is_dtls12(UnsafeRawPointer(ssl)) == 1 }

    /// Exports the SRTP keys (RFC 5764 §4.2) once connected.
    func exportSRTPKeys() throws(TransportError) -> SRTPKeyingMaterial {
        guard state == .connected, let profile = selectedProfile else {
            throw TransportError(.notConnected, "SRTP keys exist only after a DTLS handshake that negotiated use_srtp")
        }
        var exported = [UInt8](repeating: 0, count: SRTPKeyingMaterial.exportLength(for: profile))
        let label = SRTPKeyingMaterial.exporterLabel
        let ok = exported.withUnsafeMutableBufferPointer { out in
            SSL_export_keying_material(ssl, out.baseAddress, out.count, label, label.utf8.count, nil, 0, 0)
        }
        guard ok == 1 else {
            throw TransportError(.srtpFailure, "SSL_export_keying_material(\(label)) failed: \(Self.drainErrors())")
        }
        return try SRTPKeyingMaterial(exported: exported, profile: profile, role: role)
    }

    // MARK: - Steps

    private func advanceHandshake() -> DTLSOutput {
        ERR_clear_error()
        let result = SSL_do_handshake(ssl)
        var output = DTLSOutput()
        if result == 1 {
            output.datagrams = drainWrites()
            guard verifier.verified else {
                return fail(TransportError(.fingerprintMismatch, "the handshake completed without the peer's certificate being checked"), keeping: output)
            }
            guard negotiatedProfile() != nil else {
                return fail(TransportError(.noSRTPProfile, "the peer negotiated none of the offered SRTP profiles (RFC 5764 §4.1.2); DTLS without SRTP carries no media"), keeping: output)
            }
            state = .connected
            output.handshakeCompleted = true
            // Records that followed the Finished in the same datagram (early application data).
            let more = readApplicationData()
            output.datagrams += more.datagrams
            output.closedByPeer = more.closedByPeer
            output.failure = more.failure
            return output
        }
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            output.datagrams = drainWrites()
            return output
        default:
            let datagrams = drainWrites()  // the alert, so the peer learns why
            output.datagrams = datagrams
            if let failure = verifier.failure { return fail(failure, keeping: output) }
            return fail(TransportError(.handshakeFailed, "DTLS handshake failed (\(Self.errorName(error))): \(Self.drainErrors())"), keeping: output)
        }
    }

    /// What `use_srtp` negotiated, whatever the state.
    private func negotiatedProfile() -> SRTPProfile? {
        guard let profile = SSL_get_selected_srtp_profile(ssl) else { return nil }
        return SRTPProfile(identifier: UInt64(profile.pointee.id))
    }

    /// After the handshake the component carries no DTLS application data (no data channel
    /// here); reading still processes alerts and retransmitted handshake flights.
    private func readApplicationData() -> DTLSOutput {
        var output = DTLSOutput()
        var buffer = [UInt8](repeating: 0, count: 2_048)
        while true {
            ERR_clear_error()
            let count = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if count > 0 { continue }
            let error = SSL_get_error(ssl, count)
            output.datagrams += drainWrites()
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return output
            case SSL_ERROR_ZERO_RETURN:
                state = .closed
                output.closedByPeer = true
                return output
            default:
                return fail(TransportError(.handshakeFailed, "DTLS session failed (\(Self.errorName(error))): \(Self.drainErrors())"), keeping: output)
            }
        }
    }

    private func fail(_ error: TransportError, keeping output: DTLSOutput = DTLSOutput()) -> DTLSOutput {
        var output = output
        state = .failed(error)
        output.failure = error
        return output
    }

    private func drainWrites() -> [ByteBuffer] {
        let pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0 else { return [] }
        var buffer = ByteBuffer()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { out in
            Int(BIO_read(writeBIO, out.baseAddress, Int32(pending)))
        }
        return DTLSRecordPacker.datagrams(from: buffer, mtu: mtu)
    }

    private static func errorName(_ code: Int32) -> String {
        switch code {
        case SSL_ERROR_SSL: "SSL_ERROR_SSL"
        case SSL_ERROR_SYSCALL: "SSL_ERROR_SYSCALL"
        case SSL_ERROR_ZERO_RETURN: "peer closed"
        default: "SSL error \(code)"
        }
    }

    /// Empties OpenSSL's thread-local error queue into one line.
    static func drainErrors() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var text = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &text, text.count)
            messages.append(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "no OpenSSL error reported" : messages.joined(separator: "; ")
    }
}
