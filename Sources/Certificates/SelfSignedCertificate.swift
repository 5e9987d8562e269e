internal import COpenSSLShims
import Foundation

/// A fresh self-signed ECDSA P-256 certificate and its key, as PEM (TLS listeners without a
/// configured certificate; DTLS identities).
public struct SelfSignedCertificate: Sendable {
    public var certificatePEM: String
    public var privateKeyPEM: String

    public init(commonName: String, days: Int = 30) throws {
        try self.init(commonName: commonName, dnsNames: [], ipAddresses: [], days: days)
    }

    /// A certificate whose subjectAltName lists `dnsNames` and `ipAddresses` (numeric): what a
    /// TLS client matches the name it dialled against (RFC 6125 §6.4).
    public init(commonName: String, dnsNames: [String], ipAddresses: [String], days: Int = 30) throws {
        var cert: UnsafeMutablePointer<CChar>?
        var key: UnsafeMutablePointer<CChar>?
        // Commas separate entries in OpenSSL's form: names and addresses with one are refused.
        let entries = dnsNames.map { "DNS:" + $0 } + ipAddresses.map { "IP:" + $0 }
        guard !entries.contains(where: { $0.contains(",") }) else {
            throw CertificateError(.generationFailed, "a certificate name may not contain a comma")
        }
        let alternativeName = entries.joined(separator: ",")
        guard COpenSSLShims_self_signed_pem_san(commonName, alternativeName, Int32(days), &cert, &key) == 0, let cert, let key else {
            throw CertificateError(.generationFailed, "OpenSSL could not create a self-signed certificate")
        }
        defer { free(cert); free(key) }
        certificatePEM = String(cString: cert)
        privateKeyPEM = String(cString: key)
    }
}
