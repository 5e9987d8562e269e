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
        append(#"},"from":"#, to: &out)
        appendString(from, to: &out)
        append(#","id":"#, to: &out)
        appendString(id, to: &out)
        append(#","to":"#, to: &out)
        appendString(to, to: &out)
        append(#","type":"chat"}"#, to: &out)
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
        append(#"},"from":"#, to: &out)
        appendString(SignalingProtocol.nodeAddress, to: &out)
        append(#","id":"#, to: &out)
        appendString(id, to: &out)
        append(#","to":"#, to: &out)
        appendString(to, to: &out)
        append(#","type":"ack"}"#, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func append(_ raw: String, to out: inout [UInt8]) {
        out.append(contentsOf: raw.utf8)
    }

    /// `value` as a JSON string (RFC 8259 §7): the quote, the backslash and the control
    /// characters escaped, everything else (including `/` and non-ASCII) as its UTF-8 bytes.
    static func appendString(_ value: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                        hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
