import Foundation
import Signaling

/// libFuzzer entry: the signaling message decoder, which the node runs on every text frame a
/// client or a linked node sends (docs/protocol.md). Arbitrary bytes must decode to a message or
/// throw a `SignalingError` with a protocol code; whatever decodes must encode and decode again
/// to the same message, and encoding is stable (encode ∘ decode ∘ encode = encode). The chat
/// fast path's scanner (`ChatEnvelope`) takes a frame only when the decoder makes the same
/// message of it, and its frames (`ChatFrames`) decode to what they say.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSignaling(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(bytes: data, count: size)
    // As the node reads a frame: its text (invalid UTF-8 repaired), scanned, else decoded.
    let frame = String(decoding: bytes, as: UTF8.self)
    if let envelope = ChatEnvelope.scan(frame) {
        let decoded = try? SignalingCodec.decode(frame)
        precondition(decoded == envelope.message, "the scanner and the decoder disagree on \(frame):\n  \(envelope)\n  \(String(describing: decoded))")
        if case .chat(let text) = envelope.kind {
            let delivery = ChatFrames.delivery(id: envelope.id, from: envelope.from, to: envelope.to, text: text, sent: 1.5)
            precondition((try? SignalingCodec.decode(delivery)) == SignalingMessage(id: envelope.id, from: envelope.from, to: envelope.to,
                                                                                     payload: .chat(ChatBody(text: text, sent: 1.5))),
                         "a delivery frame that does not decode to its message: \(delivery)")
        }
    }
    let message: SignalingMessage
    do {
        message = try SignalingCodec.decode(bytes)
    } catch {
        // Typed throws: `error` is a SignalingError. Its code is one the node may send.
        precondition(!error.code.rawValue.isEmpty, "an error without a code")
        precondition(error.of.map { !$0.isEmpty && $0.utf8.count <= 64 } ?? true, "an error naming an invalid id")
        return 0
    }
    precondition(!message.id.isEmpty && message.id.utf8.count <= 64, "decoded an invalid id")
    _ = message.type.callSetup
    _ = Address.parse(message.to)
    _ = Address.parse(message.from)
    _ = Address.isValidRoom(message.to)

    let text = SignalingCodec.encode(message)
    let again: SignalingMessage
    do {
        again = try SignalingCodec.decode(text)
    } catch {
        preconditionFailure("a decoded message does not decode after encoding: \(error) in \(text)")
    }
    precondition(again == message, "round trip changed the message:\n  \(message)\n  \(again)\n  via \(text)")
    precondition(SignalingCodec.encode(again) == text, "encoding is not stable: \(text)")
    return 0
}
