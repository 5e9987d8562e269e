import NIOCore

/// A goodbye, RTCP PT 203 (RFC 3550 §6.6): sources leaving, with an optional reason.
public struct RTCPGoodbye: Hashable, Sendable {
    /// The sources that leave, at most 31.
    public var ssrcs: [UInt32]
    /// Why they leave, at most 255 octets.
    public var reason: String?

    /// Creates a goodbye.
    public init(ssrcs: [UInt32], reason: String? = nil) {
        self.ssrcs = ssrcs
        self.reason = reason
    }

    init(count: UInt8, parsing body: inout ByteBuffer) throws(RTPError) {
        var ssrcs: [UInt32] = []
        for index in 0..<Int(count) {
            guard let ssrc = body.readInteger(as: UInt32.self) else {
                throw RTPError(.truncated, "RTCP BYE announces \(count) sources but ends after \(index)")
            }
            ssrcs.append(ssrc)
        }
        var reason: String?
        if let length = body.readInteger(as: UInt8.self) {
            guard let bytes = body.readBytes(length: Int(length)) else {
                throw RTPError(.truncated, "RTCP BYE reason announces \(length) octets, \(body.readableBytes) remain")
            }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw RTPError(.malformed, "RTCP BYE reason is not UTF-8 text (RFC 3550 §6.6)")
            }
            reason = text
        }
        self.init(ssrcs: ssrcs, reason: reason)
    }

    func writeBody(into buffer: inout ByteBuffer) throws(RTPError) -> UInt8 {
        guard ssrcs.count <= 31 else {
            throw RTPError(.invalidArgument, "an RTCP BYE names at most 31 sources, got \(ssrcs.count)")
        }
        for ssrc in ssrcs { buffer.writeInteger(ssrc) }
        if let reason {
            let length = reason.utf8.count
            guard length <= 255 else {
                throw RTPError(.invalidArgument, "an RTCP BYE reason is at most 255 octets, got \(length)")
            }
            buffer.writeInteger(UInt8(length))
            buffer.writeString(reason)
            buffer.writeRepeatingByte(0, count: (4 - (length + 1) % 4) % 4)
        }
        return UInt8(ssrcs.count)
    }
}
