internal import COpenSSL

/// Hashes and MACs that STUN needs, computed by OpenSSL's libcrypto.
public enum Digest {
    /// HMAC-SHA1 (MESSAGE-INTEGRITY, RFC 8489 §14.5; TURN REST passwords).
    public static func hmacSHA1(key: some Collection<UInt8>, data: UnsafeRawBufferPointer) -> [UInt8] {
        hmac(EVP_sha1(), length: 20, key: Array(key), data: data)
    }

    /// HMAC-SHA256 (MESSAGE-INTEGRITY-SHA256, RFC 8489 §14.6).
    public static func hmacSHA256(key: some Collection<UInt8>, data: UnsafeRawBufferPointer) -> [UInt8] {
        hmac(EVP_sha256(), length: 32, key: Array(key), data: data)
    }

    public static func hmacSHA1(key: some Collection<UInt8>, bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hmacSHA1(key: key, data: $0) }
    }

    public static func hmacSHA256(key: some Collection<UInt8>, bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { hmacSHA256(key: key, data: $0) }
    }

    /// MD5, used only where RFC 8489 §9.2.2 prescribes it (the long-term key).
    public static func md5(_ bytes: [UInt8]) -> [UInt8] { digest(EVP_md5(), length: 16, bytes) }

    /// SHA-256 (USERHASH and the SHA-256 long-term key, RFC 8489 §14.4, §9.2.2).
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] { digest(EVP_sha256(), length: 32, bytes) }

    /// Cryptographically secure random bytes.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        precondition(ok == 1, "OpenSSL RAND_bytes failed")
        return out
    }

    /// Compares two MACs in time independent of where they differ.
    public static func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }

    private static func hmac(_ md: OpaquePointer?, length: Int, key: [UInt8], data: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        var outLength: UInt32 = 0
        key.withUnsafeBytes { k in
            out.withUnsafeMutableBufferPointer { o in
                _ = HMAC(md, k.baseAddress, Int32(k.count), data.baseAddress?.assumingMemoryBound(to: UInt8.self),
                         data.count, o.baseAddress, &outLength)
            }
        }
        return out
    }

    private static func digest(_ md: OpaquePointer?, length: Int, _ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        var outLength: UInt32 = 0
        bytes.withUnsafeBytes { b in
            out.withUnsafeMutableBufferPointer { o in
                _ = EVP_Digest(b.baseAddress, b.count, o.baseAddress, &outLength, md, nil)
            }
        }
        return out
    }
}

/// CRC-32 (ISO 3309, the polynomial STUN's FINGERPRINT uses, RFC 8489 §14.7).
public enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for byte in data { crc = t[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
