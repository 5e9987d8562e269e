/// The two frames routed chat is made of — a sender's `chat` and a recipient's `ack` — and the
/// client's `ping`, read in one pass over the frame's bytes (issue 17: the node decoded every
/// frame with `JSONDecoder` twice, once for the envelope and once for the body; and every
/// logged-in client pings every half heartbeat, 2,400 pings a second at 18,000 connections).
///
/// The scanner is strict and narrow by design: it accepts a frame only when it is sure that
/// ``SignalingCodec/decode(_:)-(String)`` would decode the same frame to the same message
/// (``message``), and answers nil for anything else — another type, a field it does not know,
/// a key given twice, a `null`, a number, a malformed or oversized frame. A nil is not an
/// error: the frame then takes the full decoder, which gives every error its code and reason.
/// `fuzz-signaling` checks the promise on every input it makes.
public struct ChatEnvelope: Sendable, Equatable {
    /// What the frame asks.
    public enum Kind: Sendable, Equatable {
        /// `chat` with `body.text` (docs/protocol.md "Chat").
        case chat(text: String)
        /// A recipient's `ack` of a delivered message (docs/protocol.md "Delivery guarantees").
        case ack(of: String, status: AckStatus?, sender: String?)
        /// `ping` with an empty body (docs/protocol.md "Liveness").
        case ping
    }

    public var id: String
    public var from: String
    public var to: String
    public var kind: Kind

    public init(id: String, from: String, to: String, kind: Kind) {
        self.id = id
        self.from = from
        self.to = to
        self.kind = kind
    }

    /// The message ``SignalingCodec/decode(_:)-(String)`` makes of the same frame.
    public var message: SignalingMessage {
        switch kind {
        case .chat(let text):
            SignalingMessage(id: id, from: from, to: to, payload: .chat(ChatBody(text: text)))
        case .ack(let of, let status, let sender):
            SignalingMessage(id: id, from: from, to: to, payload: .ack(AckBody(of: of, status: status, sender: sender)))
        case .ping:
            SignalingMessage(id: id, from: from, to: to, payload: .ping)
        }
    }

    /// Reads a `chat`, an `ack` or a `ping` frame; nil for any other frame and for anything the scanner
    /// is not sure about (decode it with ``SignalingCodec`` then).
    public static func scan(_ text: String) -> ChatEnvelope? {
        var text = text
        return text.withUTF8 { bytes in
            guard bytes.count <= SignalingProtocol.maxFrameBytes else { return nil }
            var scanner = EnvelopeScanner(bytes: bytes)
            return scanner.envelope()
        }
    }
}

/// One pass over a frame's UTF-8 bytes (valid UTF-8: they come from a `String`). Every
/// method returns nil, or false, as soon as the input leaves the narrow shape it accepts.
private struct EnvelopeScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    mutating func envelope() -> ChatEnvelope? {
        var type: String?, id: String?, from: String?, to: String?
        var text: String?, of: String?, status: String?, sender: String?
        var sawBody = false
        guard take(UInt8(ascii: "{")) else { return nil }
        if !take(UInt8(ascii: "}")) {
            repeat {
                guard let key = string(), take(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "type": guard type == nil, let value = string() else { return nil }; type = value
                case "id": guard id == nil, let value = string() else { return nil }; id = value
                case "from": guard from == nil, let value = string() else { return nil }; from = value
                case "to": guard to == nil, let value = string() else { return nil }; to = value
                case "body":
                    guard !sawBody, take(UInt8(ascii: "{")) else { return nil }
                    sawBody = true
                    if !take(UInt8(ascii: "}")) {
                        repeat {
                            guard let field = string(), take(UInt8(ascii: ":")), let value = string() else { return nil }
                            switch field {
                            case "text": guard text == nil else { return nil }; text = value
                            case "of": guard of == nil else { return nil }; of = value
                            case "status": guard status == nil else { return nil }; status = value
                            case "sender": guard sender == nil else { return nil }; sender = value
                            default: return nil
                            }
                        } while take(UInt8(ascii: ","))
                        guard take(UInt8(ascii: "}")) else { return nil }
                    }
                default:
                    return nil
                }
            } while take(UInt8(ascii: ","))
            guard take(UInt8(ascii: "}")) else { return nil }
        }
        skipSpace()
        // The codec refuses an id that is empty or over 64 bytes: leave that error to it.
        guard index == bytes.count, sawBody, let type, let id, !id.isEmpty, id.utf8.count <= 64 else { return nil }
        switch type {
        case "chat":
            guard let text, of == nil, status == nil, sender == nil else { return nil }
            return ChatEnvelope(id: id, from: from ?? "", to: to ?? "", kind: .chat(text: text))
        case "ack":
            guard let of, text == nil else { return nil }
            var ackStatus: AckStatus?
            if let status {
                guard let known = AckStatus(rawValue: status) else { return nil }
                ackStatus = known
            }
            return ChatEnvelope(id: id, from: from ?? "", to: to ?? "", kind: .ack(of: of, status: ackStatus, sender: sender))
        case "ping":
            guard text == nil, of == nil, status == nil, sender == nil else { return nil }
            return ChatEnvelope(id: id, from: from ?? "", to: to ?? "", kind: .ping)
        default:
            return nil
        }
    }

    /// JSON's insignificant whitespace (RFC 8259 §2).
    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    /// Skips whitespace, then takes `byte` if it is next.
    private mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// A JSON string (RFC 8259 §7), its escapes resolved; nil when malformed, when it holds a
    /// raw control character, or a `\u` escape that is not a whole Unicode scalar (a lone
    /// surrogate).
    private mutating func string() -> String? {
        guard take(Self.quote) else { return nil }
        let start = index
        // The common case: no escape, one copy of the bytes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == Self.quote {
                let value = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return value
            }
            if byte == Self.backslash { break }
            guard byte >= 0x20 else { return nil }
            index += 1
        }
        guard index < bytes.count else { return nil }
        var decoded = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case Self.quote:
                return String(decoding: decoded, as: UTF8.self)
            case Self.backslash:
                guard index < bytes.count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case Self.quote, Self.backslash, UInt8(ascii: "/"): decoded.append(escape)
                case UInt8(ascii: "b"): decoded.append(0x08)
                case UInt8(ascii: "f"): decoded.append(0x0C)
                case UInt8(ascii: "n"): decoded.append(0x0A)
                case UInt8(ascii: "r"): decoded.append(0x0D)
                case UInt8(ascii: "t"): decoded.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    UTF8.encode(scalar) { decoded.append($0) }
                default:
                    return nil
                }
            default:
                guard byte >= 0x20 else { return nil }
                decoded.append(byte)
            }
        }
        return nil
    }

    /// The scalar of a `\uXXXX` escape (the `\u` already taken), or of a surrogate pair
    /// `\uD8xx\uDCxx` (RFC 8259 §7).
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let high = hex4() else { return nil }
        switch high {
        case 0xD800...0xDBFF:
            guard index + 1 < bytes.count, bytes[index] == Self.backslash, bytes[index + 1] == UInt8(ascii: "u") else { return nil }
            index += 2
            guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
            return Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
        case 0xDC00...0xDFFF:
            return nil
        default:
            return Unicode.Scalar(high)
        }
    }

    private mutating func hex4() -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}
