import Foundation

/// The long-term credential mechanism (RFC 8489 §9.2).
public enum LongTermCredentials {
    /// RFC 8489 §9.2.2: key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password)).
    /// OpaqueString (SASLprep's successor) is the identity for the ASCII and NFC strings used in
    /// practice; we do not normalise further.
    public static func key(username: String, realm: String, password: String) -> [UInt8] {
        Digest.md5(Array("\(username):\(realm):\(password)".utf8))
    }

    /// RFC 8489 §9.2.2 with PASSWORD-ALGORITHM SHA-256.
    public static func keySHA256(username: String, realm: String, password: String) -> [UInt8] {
        Digest.sha256(Array("\(username):\(realm):\(password)".utf8))
    }

    /// RFC 8489 §14.4: USERHASH = SHA-256(username ":" realm).
    public static func userhash(username: String, realm: String) -> [UInt8] {
        Digest.sha256(Array("\(username):\(realm)".utf8))
    }
}

/// Time-limited TURN credentials derived from a shared secret, in the form coturn's
/// `use-auth-secret` and the "TURN REST API" draft (draft-uberti-behave-turn-rest-00) use:
/// `username = EXPIRY ":" ID`, `password = base64(HMAC-SHA1(secret, username))`.
public struct TURNRESTCredentials: Sendable, Hashable {
    public var username: String
    public var password: String

    /// Issues credentials for `id` that expire `lifetime` seconds after `now`.
    public init(secret: String, id: String, lifetime: Int, now: Date = Date()) {
        let expiry = Int(now.timeIntervalSince1970) + lifetime
        username = id.isEmpty ? "\(expiry)" : "\(expiry):\(id)"
        password = Self.password(secret: secret, username: username)
    }

    public static func password(secret: String, username: String) -> String {
        Data(Digest.hmacSHA1(key: Array(secret.utf8), bytes: Array(username.utf8))).base64EncodedString()
    }

    /// The expiry time (Unix seconds) in a REST username, or nil when it has none.
    public static func expiry(ofUsername username: String) -> Int? {
        let head = username.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return Int(head)
    }

    /// The identity a REST username stands for: the `ID` of `EXPIRY:ID` (empty for a bare
    /// `EXPIRY`), nil when the username does not start with an expiry. Each login gets a fresh
    /// username, but the identity stays the same: quotas are counted by it.
    public static func identity(ofUsername username: String) -> String? {
        let parts = username.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let head = parts.first, Int(head) != nil else { return nil }
        return parts.count == 2 ? String(parts[1]) : ""
    }
}

/// Stateless nonces (RFC 8489 §9.2: the server chooses the nonce and decides when it expires):
/// `hex(expiry) + hex(HMAC-SHA1(serverKey, expiry))[0..<16]`. Any server instance holding
/// the key recognises its own nonces; no table grows with clients.
public struct NonceIssuer: Sendable {
    public let lifetime: Int
    private let key: [UInt8]

    public init(lifetime: Int, key: [UInt8] = Digest.randomBytes(32)) {
        self.lifetime = lifetime
        self.key = key
    }

    public func issue(now: Date = Date()) -> String {
        let expiry = String(Int(now.timeIntervalSince1970) + lifetime, radix: 16)
        return expiry + tag(expiry)
    }

    /// True when the nonce was issued by this key and has not expired.
    public func isValid(_ nonce: String, now: Date = Date()) -> Bool {
        guard nonce.count > 16 else { return false }
        let expiryText = String(nonce.dropLast(16))
        guard let expiry = Int(expiryText, radix: 16), Digest.constantTimeEqual(Array(tag(expiryText).utf8), Array(nonce.suffix(16).utf8)) else {
            return false
        }
        return expiry > Int(now.timeIntervalSince1970)
    }

    private func tag(_ text: String) -> String {
        Digest.hmacSHA1(key: key, bytes: Array(text.utf8)).prefix(8).map { String(format2: $0) }.joined()
    }
}
