internal import COpenSSL
import SDP

extension SDPFingerprint {
    /// The hash functions RFC 8122 §5 names that OpenSSL computes for us. RFC 8842 §5.1 makes
    /// SHA-256 the one every endpoint must support; we emit only SHA-256.
    static let supportedHashFunctions: [String: Int] = ["sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64]

    /// Parses the value of `a=fingerprint` (RFC 8122 §5): a hash function name and the digest
    /// as colon-separated hex pairs, for example `sha-256 AB:CD:…`.
    ///
    /// - Throws: ``TransportError`` `invalidFingerprint` when the text does not follow the
    ///   grammar, names a hash function we cannot compute, or has the wrong digest length.
    public init(rfc8122 text: String) throws(TransportError) {
        let parsed: SDPFingerprint
        do {
            parsed = try SDPFingerprint(parsing: Substring(text.trimmingWhitespace()))
        } catch {
            throw TransportError(.invalidFingerprint, error.reason)
        }
        try parsed.validate()
        self = parsed
    }

    /// Checks the hash function and the digest length.
    func validate() throws(TransportError) {
        guard let length = Self.supportedHashFunctions[hashFunction] else {
            throw TransportError(.invalidFingerprint, "fingerprint hash function '\(hashFunction)' is not one of \(Self.supportedHashFunctions.keys.sorted()) (RFC 8122 §5)")
        }
        guard digest.count == length else {
            throw TransportError(.invalidFingerprint, "a \(hashFunction) fingerprint has \(length) bytes, this one \(digest.count)")
        }
    }

    /// The fingerprint of a DER certificate (OpenSSL `X509*`) with the given hash function.
    static func of(certificate: OpaquePointer, hashFunction: String) throws(TransportError) -> SDPFingerprint {
        let md: OpaquePointer?
        switch hashFunction {
        case "sha-1": md = EVP_sha1()
        case "sha-224": md = EVP_sha224()
        case "sha-256": md = EVP_sha256()
        case "sha-384": md = EVP_sha384()
        case "sha-512": md = EVP_sha512()
        default: throw TransportError(.invalidFingerprint, "fingerprint hash function '\(hashFunction)' is not supported")
        }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(certificate, md, &digest, &length) == 1 else {
            throw TransportError(.invalidFingerprint, "OpenSSL could not hash the certificate with \(hashFunction)")
        }
        return SDPFingerprint(hashFunction: hashFunction, digest: Array(digest.prefix(Int(length))))
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        var slice = Substring(self)
        while let c = slice.first, c == " " || c == "\t" || c == "\r" || c == "\n" { slice.removeFirst() }
        while let c = slice.last, c == " " || c == "\t" || c == "\r" || c == "\n" { slice.removeLast() }
        return slice
    }
}
