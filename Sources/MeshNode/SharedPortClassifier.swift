import NIOCore
import STUN

/// Tells, from the first bytes a client sends after the TLS handshake on the shared port
/// (`single-port`), whether it speaks TURN or HTTP. Sans-IO: it looks at bytes and says
/// ``Verdict/needMore`` until they decide.
///
/// - TURN: a client's first message on a fresh connection is a STUN request (an Allocate, or a
///   Binding): the top two bits of the first byte are 0 and bytes 4–7 are the magic cookie
///   0x2112A442 (RFC 8489 §6, RFC 5389 §6). ChannelData (RFC 8656 §12.4, first byte 0x40–0x4F)
///   cannot come first: a channel is bound by a ChannelBind over this same connection. Its
///   first bytes would also be ambiguous, since 0x41–0x4F are the letters `A`–`O` that start
///   `GET` and the other methods.
/// - HTTP/1.1: a request line starts with a method, a token of upper-case letters for every
///   registered method (RFC 9110 §9, at most 7: `OPTIONS`, `CONNECT`), then a space (RFC 9112 §3).
/// - Anything else is neither, and the connection is closed.
enum SharedPortClassifier {
    enum Verdict: Equatable {
        case turn
        case http
        case needMore
        case neither
    }

    /// The longest registered method (`OPTIONS`, `CONNECT`) and its space.
    static let longestMethodLine = 8

    static func classify(_ buffer: ByteBuffer) -> Verdict {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return .needMore }
        if first & 0xC0 == 0 {
            guard buffer.readableBytes >= 8 else { return .needMore }
            return STUNMessage.looksLikeSTUN(buffer) ? .turn : .neither
        }
        let prefix = buffer.getBytes(at: buffer.readerIndex, length: min(buffer.readableBytes, longestMethodLine)) ?? []
        for (index, byte) in prefix.enumerated() {
            if byte == UInt8(ascii: " ") { return index > 0 ? .http : .neither }
            guard (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) else { return .neither }
        }
        return prefix.count < longestMethodLine ? .needMore : .neither
    }
}
