import NIOCore

/// A source description, RTCP PT 202 (RFC 3550 §6.5): one chunk of items per source.
public struct RTCPSourceDescription: Hashable, Sendable {
    /// SDES item types (RFC 3550 §6.5, §12.2).
    public struct ItemType: Hashable, Sendable, RawRepresentable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// Canonical end-point identifier (RFC 3550 §6.5.1), the one item WebRTC sends.
        public static let cname = ItemType(rawValue: 1)
        public static let name = ItemType(rawValue: 2)
        public static let email = ItemType(rawValue: 3)
        public static let phone = ItemType(rawValue: 4)
        public static let location = ItemType(rawValue: 5)
        public static let tool = ItemType(rawValue: 6)
        public static let note = ItemType(rawValue: 7)
        /// Private extensions (RFC 3550 §6.5.8).
        public static let privateExtension = ItemType(rawValue: 8)
    }

    /// One SDES item: a type and up to 255 octets of UTF-8 text.
    public struct Item: Hashable, Sendable {
        public var type: ItemType
        public var text: String
        public init(type: ItemType, text: String) {
            self.type = type
            self.text = text
        }
    }

    /// The items describing one source.
    public struct Chunk: Hashable, Sendable {
        public var ssrc: UInt32
        public var items: [Item]
        public init(ssrc: UInt32, items: [Item]) {
            self.ssrc = ssrc
            self.items = items
        }
    }

    /// The chunks, at most 31.
    public var chunks: [Chunk]

    /// Creates a source description.
    public init(chunks: [Chunk]) { self.chunks = chunks }

    /// A single CNAME chunk, as a WebRTC endpoint sends in every compound packet (RFC 3550 §6.1).
    public static func cname(ssrc: UInt32, _ cname: String) -> RTCPSourceDescription {
        RTCPSourceDescription(chunks: [Chunk(ssrc: ssrc, items: [Item(type: .cname, text: cname)])])
    }

    init(count: UInt8, parsing body: inout ByteBuffer) throws(RTPError) {
        let bodyStart = body.readerIndex
        var chunks: [Chunk] = []
        for index in 0..<Int(count) {
            guard let ssrc = body.readInteger(as: UInt32.self) else {
                throw RTPError(.truncated, "RTCP SDES announces \(count) chunks but ends in chunk \(index)")
            }
            var items: [Item] = []
            while true {
                guard let type = body.readInteger(as: UInt8.self) else {
                    throw RTPError(.truncated, "RTCP SDES chunk for SSRC \(ssrc) has no END item")
                }
                if type == 0 { break }
                guard let length = body.readInteger(as: UInt8.self), let bytes = body.readBytes(length: Int(length)) else {
                    throw RTPError(.truncated, "RTCP SDES item type \(type) runs past the end of the packet")
                }
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw RTPError(.malformed, "RTCP SDES item type \(type) is not UTF-8 text (RFC 3550 §6.5)")
                }
                items.append(Item(type: ItemType(rawValue: type), text: text))
            }
            // Each chunk ends on a 32-bit boundary (RFC 3550 §6.5): skip the remaining null octets.
            let consumed = body.readerIndex - bodyStart
            let skip = (4 - consumed % 4) % 4
            guard body.readableBytes >= skip else {
                throw RTPError(.truncated, "RTCP SDES chunk for SSRC \(ssrc) lacks its padding to 32 bits")
            }
            body.moveReaderIndex(forwardBy: skip)
            chunks.append(Chunk(ssrc: ssrc, items: items))
        }
        self.chunks = chunks
    }

    func writeBody(into buffer: inout ByteBuffer) throws(RTPError) -> UInt8 {
        guard chunks.count <= 31 else {
            throw RTPError(.invalidArgument, "an RTCP SDES packet carries at most 31 chunks, got \(chunks.count)")
        }
        for chunk in chunks {
            let start = buffer.writerIndex
            buffer.writeInteger(chunk.ssrc)
            for item in chunk.items {
                let length = item.text.utf8.count
                guard item.type.rawValue != 0, length <= 255 else {
                    throw RTPError(.invalidArgument, "an SDES item has a non-zero type and at most 255 octets, got type \(item.type.rawValue) of \(length)")
                }
                buffer.writeMultipleIntegers(item.type.rawValue, UInt8(length))
                buffer.writeString(item.text)
            }
            // The END item plus null octets up to the next 32-bit boundary (at least one null).
            let used = buffer.writerIndex - start + 1
            buffer.writeRepeatingByte(0, count: 1 + (4 - used % 4) % 4)
        }
        return UInt8(chunks.count)
    }
}
