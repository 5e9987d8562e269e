import Foundation

/// End-to-end signatures of call-setup bodies (DESIGN.md "Security model": a node cannot swap a
/// DTLS fingerprint). The signed bytes are `"meshnode.v1 call-setup\n"` followed by the payload's
/// exact JSON text, so no canonical JSON form is needed.
public enum CallSigning {
    static let context = "meshnode.v1 call-setup\n"

    /// Signs `payload` with `identity`.
    public static func sign(_ payload: CallPayload, with identity: Identity) -> SignedBody {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = String(decoding: (try? encoder.encode(payload)) ?? Data(), as: UTF8.self)
        return SignedBody(payload: text, key: identity.publicKeyBase64, sig: identity.sign(text: context + text))
    }

    /// Verifies a received call-setup message against `key` (the sender's key as pinned or as
    /// bound at the node) and checks that the signed payload matches the envelope: the same
    /// type, sender and recipient. Returns the payload.
    public static func verify(_ body: SignedBody, type: CallSetupType, from: String, to: String, key: String,
                              of id: String? = nil) throws(SignalingError) -> CallPayload {
        let payload = try body.open(as: CallPayload.self, context: context, key: key, what: "the \(type.rawValue) from \(from)",
                                    from: from, shape: "a call-setup payload", of: id)
        // Across a node link the envelope qualifies names (`alice@host:port`) that the sender
        // signed bare, and the other way round: compare the names.
        guard payload.type == type, Address.bareName(payload.from) == Address.bareName(from),
              Address.bareName(payload.to) == Address.bareName(to) else {
            throw SignalingError(.badSignature, "the signed payload says \(payload.type.rawValue) from \(payload.from) to \(payload.to), the envelope \(type.rawValue) from \(from) to \(to)", of: id)
        }
        // The id is logged and printed by every peer: printable ASCII only, so that it cannot
        // carry terminal escapes (issue 15).
        guard (1...64).contains(payload.call.utf8.count), payload.call.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw SignalingError(.badField, "the call id must be 1 to 64 printable ASCII characters without spaces", of: id)
        }
        return payload
    }
}
