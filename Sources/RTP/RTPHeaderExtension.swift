import NIOCore

/// One element of an RFC 8285 header extension block: a local identifier and its data.
public struct RTPHeaderExtensionElement: Hashable, Sendable {
    /// The local identifier negotiated with `a=extmap` (RFC 8285 §5): 1–14 in the one-byte form, 1–255 in the two-byte form.
    public var id: UInt8
    /// The element's data.
    public var data: ByteBuffer

    /// Creates an element.
    public init(id: UInt8, data: ByteBuffer) {
        self.id = id
        self.data = data
    }

    /// Creates an element from bytes.
    public init(id: UInt8, bytes: some Sequence<UInt8>) {
        self.init(id: id, data: ByteBuffer(bytes: bytes))
    }
}

/// The header extension block of an RTP packet (RFC 3550 §5.3.1), decoded per RFC 8285 when its
/// profile is the one-byte (`0xBEDE`) or two-byte (`0x100x`) form.
public enum RTPHeaderExtension: Hashable, Sendable {
    /// RFC 8285 §4.2: one-byte headers, identifiers 1–14, 1–16 bytes of data each.
    case oneByte([RTPHeaderExtensionElement])
    /// RFC 8285 §4.3: two-byte headers, identifiers 1–255, 0–255 bytes of data each; `appBits` are the profile's low 4 bits.
    case twoByte(appBits: UInt8, [RTPHeaderExtensionElement])
    /// Any other profile (RFC 3550 §5.3.1), kept as opaque bytes (a multiple of 4).
    case other(profile: UInt16, data: ByteBuffer)

    /// The one-byte form's profile value (RFC 8285 §4.2).
    public static let oneByteProfile: UInt16 = 0xBEDE
    /// The two-byte form's profile value with zero app bits (RFC 8285 §4.3).
    public static let twoByteProfile: UInt16 = 0x1000

    /// The smallest form that can carry `elements`: one-byte when every id is 1–14 and every element
    /// has 1–16 bytes, two-byte otherwise (RFC 8285 §4.1.1).
    public static func compact(_ elements: [RTPHeaderExtensionElement]) -> RTPHeaderExtension {
        let fitsOneByte = elements.allSatisfy { (1...14).contains($0.id) && (1...16).contains($0.data.readableBytes) }
        return fitsOneByte ? .oneByte(elements) : .twoByte(appBits: 0, elements)
    }

    /// The elements of an RFC 8285 block; empty for other profiles.
    public var elements: [RTPHeaderExtensionElement] {
        switch self {
        case .oneByte(let elements), .twoByte(_, let elements): elements
        case .other: []
        }
    }

    /// The data of the element with `id`, if present.
    public func element(id: UInt8) -> ByteBuffer? {
        elements.first { $0.id == id }?.data
    }

    init(profile: UInt16, parsing body: inout ByteBuffer) throws(RTPError) {
        if profile == Self.oneByteProfile {
            self = .oneByte(try Self.parseOneByte(&body))
        } else if profile & 0xFFF0 == Self.twoByteProfile {
            self = .twoByte(appBits: UInt8(profile & 0x000F), try Self.parseTwoByte(&body))
        } else {
            self = .other(profile: profile, data: body)
        }
    }

    private static func parseOneByte(_ body: inout ByteBuffer) throws(RTPError) -> [RTPHeaderExtensionElement] {
        var elements: [RTPHeaderExtensionElement] = []
        while let header = body.readInteger(as: UInt8.self) {
            // RFC 8285 §4.2: id 0 is a padding byte; id 15 is reserved and ends processing.
            if header == 0 { continue }
            let id = header >> 4
            if id == 15 { break }
            guard id != 0 else {
                throw RTPError(.malformed, "one-byte header extension element with the reserved id 0 and a non-zero length (RFC 8285 §4.2)")
            }
            let length = Int(header & 0x0F) + 1
            guard let data = body.readSlice(length: length) else {
                throw RTPError(.truncated, "one-byte header extension id \(id) announces \(length) bytes, \(body.readableBytes) remain")
            }
            elements.append(RTPHeaderExtensionElement(id: id, data: data))
        }
        return elements
    }

    private static func parseTwoByte(_ body: inout ByteBuffer) throws(RTPError) -> [RTPHeaderExtensionElement] {
        var elements: [RTPHeaderExtensionElement] = []
        while let id = body.readInteger(as: UInt8.self) {
            if id == 0 { continue }  // RFC 8285 §4.3: padding
            guard let length = body.readInteger(as: UInt8.self) else {
                throw RTPError(.truncated, "two-byte header extension id \(id) has no length octet")
            }
            guard let data = body.readSlice(length: Int(length)) else {
                throw RTPError(.truncated, "two-byte header extension id \(id) announces \(length) bytes, \(body.readableBytes) remain")
            }
            elements.append(RTPHeaderExtensionElement(id: id, data: data))
        }
        return elements
    }

    /// Appends the block (profile, length in words, elements, zero padding to 32 bits).
    func write(into buffer: inout ByteBuffer) throws(RTPError) {
        let profile: UInt16
        var body = ByteBuffer()
        switch self {
        case .oneByte(let elements):
            profile = Self.oneByteProfile
            for element in elements {
                guard (1...14).contains(element.id) else {
                    throw RTPError(.invalidArgument, "one-byte header extension ids are 1–14 (RFC 8285 §4.2), got \(element.id)")
                }
                let length = element.data.readableBytes
                guard (1...16).contains(length) else {
                    throw RTPError(.invalidArgument, "one-byte header extension id \(element.id) carries 1–16 bytes, got \(length)")
                }
                body.writeInteger(element.id << 4 | UInt8(length - 1))
                var data = element.data
                body.writeBuffer(&data)
            }
        case .twoByte(let appBits, let elements):
            guard appBits <= 0x0F else {
                throw RTPError(.invalidArgument, "two-byte header extension app bits are 4 bits, got \(appBits)")
            }
            profile = Self.twoByteProfile | UInt16(appBits)
            for element in elements {
                guard element.id >= 1 else {
                    throw RTPError(.invalidArgument, "two-byte header extension id 0 is reserved for padding (RFC 8285 §4.3)")
                }
                let length = element.data.readableBytes
                guard length <= 255 else {
                    throw RTPError(.invalidArgument, "two-byte header extension id \(element.id) carries at most 255 bytes, got \(length)")
                }
                body.writeMultipleIntegers(element.id, UInt8(length))
                var data = element.data
                body.writeBuffer(&data)
            }
        case .other(let otherProfile, let data):
            guard data.readableBytes % 4 == 0 else {
                throw RTPError(.invalidArgument, "a header extension body is a whole number of 32-bit words, got \(data.readableBytes) bytes")
            }
            profile = otherProfile
            body = data
        }
        let padding = (4 - body.readableBytes % 4) % 4
        body.writeRepeatingByte(0, count: padding)
        let words = body.readableBytes / 4
        guard words <= Int(UInt16.max) else {
            throw RTPError(.invalidArgument, "header extension of \(words) words exceeds 65535")
        }
        buffer.writeMultipleIntegers(profile, UInt16(words))
        buffer.writeBuffer(&body)
    }
}
