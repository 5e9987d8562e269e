internal import CSodium

/// A secret two node identities share without sending anything (docs/mesh.md "TURN
/// credentials"): X25519 between the Ed25519 keys converted to Curve25519 (libsodium
/// `crypto_sign_ed25519_*_to_curve25519`, `crypto_scalarmult`), hashed with both public keys
/// and a context so that it serves this purpose only.
extension Identity {
    /// The 32-byte secret this identity shares with the holder of `publicKeyBase64`; the other
    /// side computes the same with our public key. Nil for a key that is not a valid point.
    public func sharedSecret(with publicKeyBase64: String, context: String) -> [UInt8]? {
        Sodium.ready()
        guard let theirs = Identity.decodeKey(publicKeyBase64) else { return nil }
        var theirCurve = [UInt8](repeating: 0, count: Int(crypto_scalarmult_curve25519_BYTES))
        var ourCurve = [UInt8](repeating: 0, count: Int(crypto_scalarmult_curve25519_SCALARBYTES))
        guard crypto_sign_ed25519_pk_to_curve25519(&theirCurve, theirs) == 0,
              crypto_sign_ed25519_sk_to_curve25519(&ourCurve, secretKey) == 0 else { return nil }
        defer { sodium_memzero(&ourCurve, ourCurve.count) }
        var point = [UInt8](repeating: 0, count: Int(crypto_scalarmult_BYTES))
        // Fails for low-order points: a key chosen to make the secret predictable.
        guard crypto_scalarmult(&point, ourCurve, theirCurve) == 0 else { return nil }
        // Both sides hash the same bytes: context, the point, then the two keys in a fixed order.
        let (first, second) = publicKey.lexicographicallyPrecedes(theirs) ? (publicKey, theirs) : (theirs, publicKey)
        let input = Array(context.utf8) + [0] + point + first + second
        var out = [UInt8](repeating: 0, count: 32)
        _ = crypto_generichash(&out, out.count, input, UInt64(input.count), nil, 0)
        return out
    }
}
