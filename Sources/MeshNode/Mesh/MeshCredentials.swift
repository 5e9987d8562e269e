import Foundation
import ICE
import Signaling
import Synchronization
import STUN

/// TURN credentials that one node issues and every relay of the mesh accepts (docs/mesh.md
/// "TURN credentials"), in the long-term credential form every TURN client and browser speaks:
///
/// - `username = EXPIRY ":" ISSUER ":" PEER`: Unix expiry, the issuing node's Ed25519 key in
///   base64url without padding, the peer's name;
/// - `password = base64(HMAC-SHA1(K, username))`, where `K` is the secret the issuing node and
///   the relay share through their node keys (`Identity.sharedSecret`, X25519).
///
/// Only the issuer and that one relay can compute a password, so credentials for relay A are
/// useless at relay B, and no mesh-wide secret exists to leak. A relay accepts a username only
/// while the issuer is a live member of its mesh directory (or itself).
public final class MeshCredentials: Sendable {
    static let context = "meshnode.v1 turn-credential"
    /// The longest a credential may live, in seconds: one day, the TURN REST draft's suggested
    /// lifetime (draft-uberti-behave-turn-rest-00 §2.2). Nodes issue them for an hour; a
    /// username whose expiry lies further ahead is refused, so that a credential that leaks
    /// (a page's log, a peer's config) cannot be used for years.
    public static let maximumLifetime = 86_400

    let identity: Identity
    private struct State {
        var members: Set<String> = []
        var secrets: [String: [UInt8]] = [:]
    }
    private let state = Mutex(State())

    public init(identity: Identity) {
        self.identity = identity
    }

    /// The issuers a relay trusts: the keys of live mesh records (base64). This node is always one.
    public func setMembers(_ keys: Set<String>) {
        state.withLock { s in
            s.members = keys
            s.secrets = s.secrets.filter { keys.contains($0.key) || $0.key == identity.publicKeyBase64 }
        }
    }

    /// Credentials for `peer` at the relay whose node key is `relayKey`.
    public func issue(peer: String, relayKey: String, lifetime: Int, now: Date = Date()) -> (username: String, password: String)? {
        guard let secret = secret(with: relayKey) else { return nil }
        let lifetime = min(max(lifetime, 1), Self.maximumLifetime)
        let username = "\(Int(now.timeIntervalSince1970) + lifetime):\(Self.base64url(identity.publicKeyBase64)):\(peer)"
        return (username, Self.password(secret: secret, username: username))
    }

    /// The relay side: the password of a mesh username, nil when it is not one, has expired,
    /// expires more than `maximumLifetime` ahead, or names an issuer that is not a live member.
    public func password(forUsername username: String, now: Date = Date()) -> String? {
        let parts = username.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        let time = Int(now.timeIntervalSince1970)
        guard parts.count == 3, parts[1].utf8.count == 43, let expiry = Int(parts[0]), expiry > time, expiry <= time + Self.maximumLifetime,
              let issuer = Self.base64(fromURL: String(parts[1])) else { return nil }
        let trusted = issuer == identity.publicKeyBase64 || state.withLock { $0.members.contains(issuer) }
        guard trusted, let secret = secret(with: issuer) else { return nil }
        return Self.password(secret: secret, username: username)
    }

    private func secret(with key: String) -> [UInt8]? {
        if let known = state.withLock({ $0.secrets[key] }) { return known }
        guard let secret = identity.sharedSecret(with: key, context: Self.context) else { return nil }
        state.withLock { $0.secrets[key] = secret }
        return secret
    }

    static func password(secret: [UInt8], username: String) -> String {
        Data(Digest.hmacSHA1(key: secret, bytes: Array(username.utf8))).base64EncodedString()
    }

    static func base64url(_ base64: String) -> String {
        String(base64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").prefix { $0 != "=" })
    }

    static func base64(fromURL text: String) -> String? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard Identity.decodeKey(base64) != nil else { return nil }
        return base64
    }
}
