import Foundation
import NIOCore
import Signaling

/// libFuzzer entry: the signaling message decoder, which the node runs on every text frame a
/// client or a linked node sends (docs/protocol.md). Arbitrary bytes must decode to a message or
/// throw a `SignalingError` with a protocol code; whatever decodes must encode and decode again
/// to the same message, and encoding is stable (encode ∘ decode ∘ encode = encode). The chat
/// fast path's scanner (`ChatEnvelope`) takes a frame only when the decoder makes the same
/// message of it, and its frames (`ChatFrames`) decode to what they say. The same bytes, read as
/// a client's WebSocket frames (`WebSocketFrameReader`), give the same messages and the same
/// violation whether they come in one read or cut in two, and no message passes the limits.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSignaling(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(bytes: data, count: size)
    let whole = readFrames([bytes])
    let cut = size == 0 ? 0 : Int(data[0]) % size
    let split = readFrames([bytes.prefix(cut), bytes.dropFirst(cut)])
    precondition(whole.messages == split.messages && whole.violation == split.violation,
                 "frames read differently when cut at \(cut): \(whole) / \(split)")
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

/// What a frame reader with small limits (so the fuzzer reaches them) makes of `chunks`.
func readFrames(_ chunks: [Data]) -> (messages: [WebSocketFrameReader.Message], violation: WebSocketFrameReader.Violation?) {
    var reader = WebSocketFrameReader(maxMessage: 300, maxFragments: 4)
    var messages: [WebSocketFrameReader.Message] = []
    for chunk in chunks {
        do {
            try reader.read(ByteBuffer(bytes: chunk)) { message in
                if case .text(let text) = message { precondition(text.utf8.count <= 3 * 300, "a message over the limit") }
                messages.append(message)
            }
        } catch {
            precondition(error.code == 1002 || error.code == 1009, "an unexpected close code \(error.code)")
            return (messages, error)
        }
    }
    return (messages, nil)
}
