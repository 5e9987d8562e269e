import NIOCore

/// The bytes written as hex digits in `text`; whitespace (spaces, line breaks) is ignored, so
/// test vectors can be copied from an RFC as they are laid out there.
public func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    precondition(digits.count % 2 == 0, "an odd number of hex digits")
    return stride(from: 0, to: digits.count, by: 2).map { index in
        guard let byte = UInt8(String(digits[index...index + 1]), radix: 16) else { preconditionFailure("not hex: \(digits[index...index + 1])") }
        return byte
    }
}

/// ``hexBytes(_:)`` in a `ByteBuffer`.
public func hexBuffer(_ text: String) -> ByteBuffer {
    ByteBuffer(bytes: hexBytes(text))
}

extension ByteBuffer {
    /// The readable bytes as lowercase hex, for comparing with test vectors.
    public var hexString: String {
        readableBytesView.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
