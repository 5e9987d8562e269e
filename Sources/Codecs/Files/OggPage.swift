import NIOCore

/// One Ogg page (RFC 3533 §6): the capture pattern "OggS", flags, the granule position, the stream's
/// serial number, a page sequence number, a CRC-32 over the page, and the lacing table that splits
/// the body into packets (255-byte segments, a packet ends with a segment shorter than 255).
struct OggPage: Sendable {
    /// Header type flags (RFC 3533 §6).
    struct Flags: OptionSet, Sendable {
        let rawValue: UInt8
        static let continued = Flags(rawValue: 0x01)
        static let beginningOfStream = Flags(rawValue: 0x02)
        static let endOfStream = Flags(rawValue: 0x04)
    }

    var flags: Flags
    var granulePosition: Int64
    var serialNumber: UInt32
    var sequenceNumber: UInt32
    /// Whole packets carried by the page.
    var packets: [ByteBuffer]

    /// Segments the packets need in the lacing table.
    static func segments(for size: Int) -> Int { size / 255 + 1 }

    /// The page's wire form, CRC included.
    func serialized() -> ByteBuffer {
        var lacing: [UInt8] = []
        for packet in packets {
            let size = packet.readableBytes
            lacing += [UInt8](repeating: 255, count: size / 255)
            lacing.append(UInt8(size % 255))
        }
        var page = ByteBuffer()
        page.writeString("OggS")
        page.writeMultipleIntegers(UInt8(0), flags.rawValue, endianness: .little)
        page.writeInteger(granulePosition, endianness: .little)
        page.writeMultipleIntegers(serialNumber, sequenceNumber, UInt32(0), endianness: .little)
        page.writeInteger(UInt8(lacing.count))
        page.writeBytes(lacing)
        for var packet in packets { page.writeBuffer(&packet) }
        let crc = page.withUnsafeReadableBytes { Self.crc32($0) }
        page.setInteger(crc, at: page.readerIndex + 22, endianness: .little)
        return page
    }

    /// Ogg's CRC-32: polynomial 0x04C11DB7, initial value 0, not reflected, no final XOR (RFC 3533 §6).
    static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0
        for byte in bytes {
            crc ^= UInt32(byte) << 24
            for _ in 0..<8 { crc = crc & 0x8000_0000 != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1 }
        }
        return crc
    }
}
