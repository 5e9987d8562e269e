internal import COpenSSL
internal import Certificates
import SDP

/// A DTLS identity: a self-signed ECDSA P-256 certificate, its private key and its SHA-256
/// fingerprint for `a=fingerprint` (RFC 8122 §5, RFC 8827 §6.5).
///
/// WebRTC certificates are not checked against any authority: the peer trusts exactly the
/// certificate whose hash came in the signed SDP (RFC 8842 §5.1). One certificate may serve
/// every call of a process; make a new one to unlink calls from each other.
///
/// `@unchecked Sendable`: it owns an OpenSSL `X509*` and `EVP_PKEY*` that are never mutated
/// after `init`; OpenSSL reference-counts them atomically when a DTLS context takes them, so
/// sharing across threads is safe. Both are freed in `deinit`.
public final class DTLSCertificate: @unchecked Sendable {
    /// `sha-256 AB:CD:…` of the DER certificate, as sent in `a=fingerprint`.
    public let fingerprint: SDPFingerprint
    /// The certificate as PEM.
    public let certificatePEM: String

    let certificate: OpaquePointer
    let privateKey: OpaquePointer

    /// Makes a fresh self-signed ECDSA P-256 certificate (valid 30 days by default).
    /// - Throws: ``TransportError`` `handshakeFailed` when OpenSSL cannot create it.
    public convenience init(commonName: String = "meshnode", days: Int = 30) throws(TransportError) {
        let pair: SelfSignedCertificate
        do {
            pair = try SelfSignedCertificate(commonName: commonName, days: days)
        } catch {
            throw TransportError(.handshakeFailed, "OpenSSL could not create a self-signed P-256 certificate: \(error)")
        }
        try self.init(certificatePEM: pair.certificatePEM, privateKeyPEM: pair.privateKeyPEM)
    }

    /// Loads a certificate and its private key from PEM.
    /// - Throws: ``TransportError`` `invalidArgument` when either does not parse or they
    ///   do not belong together.
    public init(certificatePEM: String, privateKeyPEM: String) throws(TransportError) {
        guard let certificate = Self.withBIO(certificatePEM, { PEM_read_bio_X509($0, nil, nil, nil) }) else {
            throw TransportError(.invalidArgument, "the certificate PEM does not parse as an X.509 certificate")
        }
        guard let privateKey = Self.withBIO(privateKeyPEM, { PEM_read_bio_PrivateKey($0, nil, nil, nil) }) else {
            X509_free(certificate)
            throw TransportError(.invalidArgument, "the private key PEM does not parse")
        }
        guard X509_check_private_key(certificate, privateKey) == 1 else {
            X509_free(certificate)
            EVP_PKEY_free(privateKey)
            ERR_clear_error()
            throw TransportError(.invalidArgument, "the private key does not belong to the certificate")
        }
        self.certificate = certificate
        self.privateKey = privateKey
        self.certificatePEM = certificatePEM
        do {
            self.fingerprint = try SDPFingerprint.of(certificate: certificate, hashFunction: "sha-256")
        } catch {
            X509_free(certificate)
            EVP_PKEY_free(privateKey)
            throw error
        }
    }

    deinit {
        X509_free(certificate)
        EVP_PKEY_free(privateKey)
    }

    /// Runs `reader` on a read-only memory BIO over `pem`.
    private static func withBIO(_ pem: String, _ reader: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
        var bytes = Array(pem.utf8)
        return bytes.withUnsafeMutableBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            let value = reader(bio)
            if value == nil { ERR_clear_error() }
            return value
        }
    }
}
