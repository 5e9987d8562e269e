import Foundation

extension SignedBody {
    /// The checks every signed body shares: `key` is the sender's key (bound at the node or
    /// pinned), the signature over `context + payload` verifies with it, and the payload decodes
    /// as `T`. `what` names the message in the errors ("the offer from alice"); `shape` says what
    /// the payload should have been. The caller then checks the payload against its envelope.
    func open<T: Decodable>(as _: T.Type, context: String, key: String, what: String, from: String,
                            shape: String, of id: String?) throws(SignalingError) -> T {
        guard self.key == key else {
            throw SignalingError(.badSignature, "\(what) is signed by key \(self.key), not by \(from)'s key \(key)", of: id)
        }
        guard Identity.verify(signatureBase64: sig, text: context + payload, publicKeyBase64: key) else {
            throw SignalingError(.badSignature, "the signature of \(what) does not verify: the body was altered or signed by another key", of: id)
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(payload.utf8))
        } catch {
            throw SignalingError(.badField, "the signed payload of \(what) is not \(shape)", of: id)
        }
    }
}
