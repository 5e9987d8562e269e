/// The node's frames on the chat fast path, written by appending bytes (issue 17: a
/// `JSONEncoder` per delivery and per ack was a fifth of the hub's time). They are the frames
/// ``SignalingCodec/encode(_:)`` writes for the same messages — one object, keys sorted, no
/// insignificant whitespace — which `SignalingTests` check by decoding both.
public enum ChatFrames {
    /// A `chat` as delivered to its recipient, with the node's `sent` time.
    public static func delivery(id: String, from: String, to: String, text: String, sent: Double) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64 + id.utf8.count + from.utf8.count + to.utf8.count + text.utf8.count)
        append(#"{"body":{"sent":"#, to: &out)
        append(sent.description, to: &out)
        append(#","text":"#, to: &out)
        appendString(text, to: &out)
        appendEnvelope(from: from, id: id, to: to, type: "chat", to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The node's `ack` of request `of` to `to`, with its own message id.
    public static func ack(of: String, status: AckStatus, to: String, id: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(80 + of.utf8.count + to.utf8.count + id.utf8.count)
        append(#"{"body":{"of":"#, to: &out)
        appendString(of, to: &out)
        append(#","status":"#, to: &out)
        appendString(status.rawValue, to: &out)
        appendEnvelope(from: SignalingProtocol.nodeAddress, id: id, to: to, type: "ack", to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The node's `pong` to `to`, answering the `ping` whose id was `id` (docs/protocol.md
    /// "Liveness": the pong carries the ping's id).
    public static func pong(id: String, to: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64 + id.utf8.count + to.utf8.count)
        append(#"{"body":{"#, to: &out)
        appendEnvelope(from: SignalingProtocol.nodeAddress, id: id, to: to, type: "pong", to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The envelope's keys after `body`, in sorted order, and the closing brace.
    private static func appendEnvelope(from: String, id: String, to recipient: String, type: String, to out: inout [UInt8]) {
        append(#"},"from":"#, to: &out)
        appendString(from, to: &out)
        append(#","id":"#, to: &out)
        appendString(id, to: &out)
        append(#","to":"#, to: &out)
        appendString(recipient, to: &out)
        append(#","type":"#, to: &out)
        appendString(type, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    private static func append(_ raw: String, to out: inout [UInt8]) {
        out.append(contentsOf: raw.utf8)
    }

    /// `value` as a JSON string (RFC 8259 §7): the quote, the backslash and the control
    /// characters escaped, everything else (including `/` and non-ASCII) as its UTF-8 bytes.
    static func appendString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            let escaped: UInt8
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): escaped = byte
            case 0x0A: escaped = UInt8(ascii: "n")
            case 0x0D: escaped = UInt8(ascii: "r")
            case 0x09: escaped = UInt8(ascii: "t")
            case 0..<0x20:
                // \u00XX, with no table allocated per character.
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "u"))
                out.append(UInt8(ascii: "0"))
                out.append(UInt8(ascii: "0"))
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0xF))
                continue
            default:
                out.append(byte)
                continue
            }
            out.append(UInt8(ascii: "\\"))
            out.append(escaped)
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
