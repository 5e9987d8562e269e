internal import COpenSSLShims
import Foundation

/// A fresh self-signed ECDSA P-256 certificate and its key, as PEM (TLS listeners without a
/// configured certificate; DTLS identities).
public struct SelfSignedCertificate: Sendable {
    public var certificatePEM: String
    public var privateKeyPEM: String

    public init(commonName: String, days: Int = 30) throws {
        var cert: UnsafeMutablePointer<CChar>?
        var key: UnsafeMutablePointer<CChar>?
        guard COpenSSLShims_self_signed_pem(commonName, Int32(days), &cert, &key) == 0, let cert, let key else {
            throw CertificateError(.generationFailed, "OpenSSL could not create a self-signed certificate")
        }
        defer { free(cert); free(key) }
        certificatePEM = String(cString: cert)
        privateKeyPEM = String(cString: key)
    }
}
