public import NIOCore

/// Packs the DTLS records OpenSSL wrote into a memory BIO into datagrams no larger than the
/// path MTU. A memory BIO keeps no datagram boundaries, so we restore them here: every
/// record stays whole (RFC 6347 §4.1.1: a record must not span datagrams) and several may
/// share a datagram (RFC 6347 §4.1: "multiple DTLS records may be placed in a single
/// datagram").
public enum DTLSRecordPacker {
    /// The DTLS record header: type(1) version(2) epoch(2) sequence_number(6) length(2)
    /// (RFC 6347 §4.1).
    public static let headerLength = 13

    /// Splits `bytes` into datagrams of whole records, each at most `mtu` bytes unless a
    /// single record is longer (then it travels alone). Trailing bytes that do not form a
    /// whole record go out as one last datagram, unchanged, so nothing is silently lost.
    public static func datagrams(from bytes: ByteBuffer, mtu: Int) -> [ByteBuffer] {
        var input = bytes
        var result: [ByteBuffer] = []
        var current: ByteBuffer?
        while input.readableBytes > 0 {
            guard input.readableBytes >= headerLength,
                let length = input.getInteger(at: input.readerIndex + 11, as: UInt16.self),
                input.readableBytes >= headerLength + Int(length),
                let record = input.readSlice(length: headerLength + Int(length))
            else {
                if let pending = current { result.append(pending) }
                current = nil
                result.append(input.readSlice(length: input.readableBytes)!)
                break
            }
            if var pending = current, pending.readableBytes + record.readableBytes <= mtu {
                var copy = record
                pending.writeBuffer(&copy)
                current = pending
            } else {
                if let pending = current { result.append(pending) }
                current = record
            }
        }
        if let pending = current { result.append(pending) }
        return result
    }
}
