import Foundation
internal import CSodium

/// A peer's identity: an Ed25519 key pair (libsodium `crypto_sign`). The public key is the
/// identity; names are bindings to it (DESIGN.md, "Security model").
public struct Identity: Sendable {
    public static let publicKeyBytes = 32
    public static let seedBytes = 32
    public static let signatureBytes = 64

    /// 32 bytes.
    public let publicKey: [UInt8]
    /// The 32-byte seed the key pair is derived from: what the identity file stores.
    let seed: [UInt8]
    /// libsodium's 64-byte secret key (seed followed by public key).
    let secretKey: [UInt8]

    /// A new random identity.
    public static func generate() -> Identity {
        // A 32-byte seed of the right size always derives a key pair.
        try! Identity(seed: Sodium.randomBytes(seedBytes))
    }

    /// The identity derived from a 32-byte seed (`crypto_sign_seed_keypair`).
    public init(seed: [UInt8]) throws(SignalingError) {
        Sodium.ready()
        guard seed.count == Self.seedBytes else {
            throw SignalingError(.badField, "an Ed25519 seed has \(Self.seedBytes) bytes, not \(seed.count)")
        }
        var pk = [UInt8](repeating: 0, count: Int(crypto_sign_PUBLICKEYBYTES))
        var sk = [UInt8](repeating: 0, count: Int(crypto_sign_SECRETKEYBYTES))
        let result = crypto_sign_seed_keypair(&pk, &sk, seed)
        guard result == 0 else { throw SignalingError(.internalError, "crypto_sign_seed_keypair failed") }
        publicKey = pk
        secretKey = sk
        self.seed = seed
    }

    /// The public key in base64, as it appears on the wire.
    public var publicKeyBase64: String { Data(publicKey).base64EncodedString() }

    /// A detached Ed25519 signature of `message` (`crypto_sign_detached`).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Self.signatureBytes)
        var length: UInt64 = 0
        _ = crypto_sign_detached(&signature, &length, message, UInt64(message.count), secretKey)
        return signature
    }

    /// A detached signature of the UTF-8 bytes of `text`, in base64.
    public func sign(text: String) -> String {
        Data(sign(Array(text.utf8))).base64EncodedString()
    }

    /// True when `signature` is a valid Ed25519 signature of `message` by `publicKey`.
    public static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        Sodium.ready()
        guard signature.count == signatureBytes, publicKey.count == publicKeyBytes else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }

    /// `verify` with base64 signature and key and a text message; false for bad base64.
    public static func verify(signatureBase64: String, text: String, publicKeyBase64: String) -> Bool {
        guard let signature = Data(base64Encoded: signatureBase64), let key = decodeKey(publicKeyBase64) else { return false }
        return verify(signature: Array(signature), message: Array(text.utf8), publicKey: key)
    }

    /// A base64 public key's 32 bytes, or nil when it is not one.
    public static func decodeKey(_ base64: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: base64), data.count == publicKeyBytes else { return nil }
        return Array(data)
    }
}
