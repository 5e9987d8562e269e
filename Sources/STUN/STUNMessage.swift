import NIOCore

/// The 96-bit transaction ID of a STUN message (RFC 8489 §6).
public struct STUNTransactionID: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt32
    public var low: UInt64

    public init(high: UInt32, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A new ID from the system's secure random source (RFC 8489 §6: "uniformly and randomly").
    public static func random() -> STUNTransactionID {
        var rng = SystemRandomNumberGenerator()
        return STUNTransactionID(high: rng.next(), low: rng.next())
    }

    public var bytes: [UInt8] {
        withUnsafeBytes(of: high.bigEndian, Array.init) + withUnsafeBytes(of: low.bigEndian, Array.init)
    }

    public var description: String { bytes.map { String(format2: $0) }.joined() }
}

extension String {
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }
}

/// One attribute: its type and its value without padding.
public struct STUNAttribute: Sendable {
    public var type: STUNAttributeType
    public var value: ByteBuffer

    public init(type: STUNAttributeType, value: ByteBuffer) {
        self.type = type
        self.value = value
    }
}

/// A STUN message (RFC 8489 §5): a sans-IO value that parses from and encodes to bytes.
///
/// Messages built in code carry their attributes in order; MESSAGE-INTEGRITY,
/// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are added by ``encode(integrity:fingerprint:allocator:)``.
public struct STUNMessage: Sendable {
    public static let magicCookie: UInt32 = 0x2112_A442
    public static let headerLength = 20
    /// RFC 8489 §6: the length field is 16 bits.
    public static let maximumLength = 20 + 65_532

    public var type: STUNMessageType
    public var transactionID: STUNTransactionID
    public var attributes: [STUNAttribute]

    /// The bytes a parsed message came from; integrity is verified over them.
    public private(set) var raw: ByteBuffer?
    /// Offsets (from the start of `raw`) of the integrity attributes of a parsed message.
    private(set) var integrityOffset: Int?
    private(set) var integritySHA256Offset: Int?
    /// Whether a parsed message carried a valid FINGERPRINT.
    public private(set) var hasFingerprint = false

    public init(type: STUNMessageType, transactionID: STUNTransactionID = .random(), attributes: [STUNAttribute] = []) {
        self.type = type
        self.transactionID = transactionID
        self.attributes = attributes
    }

    /// True when the buffer could be a STUN message: top two bits zero and the magic cookie
    /// in place (RFC 8489 §6; RFC 7983 demultiplexing).
    public static func looksLikeSTUN(_ buffer: ByteBuffer) -> Bool {
        guard let (type, _, cookie) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt16, UInt16, UInt32).self) else {
            return false
        }
        return type & 0xC000 == 0 && cookie == magicCookie
    }

    /// Parses one whole message; the buffer must hold exactly the message (a datagram or a
    /// frame from ``STUNStreamFramer``).
    public init(parsing buffer: ByteBuffer) throws(STUNError) {
        let start = buffer.readerIndex
        guard buffer.readableBytes >= Self.headerLength else {
            throw STUNError(.truncated, "\(buffer.readableBytes) bytes is shorter than the 20-byte STUN header")
        }
        let (typeField, length, cookie, high, low) = buffer.getMultipleIntegers(
            at: start, as: (UInt16, UInt16, UInt32, UInt32, UInt64).self)!
        guard cookie == Self.magicCookie, let type = STUNMessageType(wire: typeField) else {
            throw STUNError(.notSTUN, "no STUN magic cookie or non-zero leading bits")
        }
        guard length % 4 == 0 else {
            throw STUNError(.badLength, "message length \(length) is not a multiple of 4")
        }
        guard Int(length) + Self.headerLength == buffer.readableBytes else {
            throw STUNError(.badLength, "message length \(length) does not match the \(buffer.readableBytes - 20) bytes after the header")
        }
        self.init(type: type, transactionID: STUNTransactionID(high: high, low: low))
        raw = buffer

        let end = Self.headerLength + Int(length)
        var offset = Self.headerLength
        var ignoreRest = false
        while offset < end {
            guard end - offset >= 4,
                  let (rawType, valueLength) = buffer.getMultipleIntegers(at: start + offset, as: (UInt16, UInt16).self) else {
                throw STUNError(.badAttribute, "truncated attribute header at offset \(offset)")
            }
            let attributeType = STUNAttributeType(rawValue: rawType)
            let padded = (Int(valueLength) + 3) & ~3
            guard offset + 4 + padded <= end else {
                throw STUNError(.badAttribute, "\(attributeType) of \(valueLength) bytes runs past the end of the message")
            }
            if hasFingerprint {
                throw STUNError(.badAttribute, "\(attributeType) follows FINGERPRINT, which must be last")
            }
            let value = buffer.getSlice(at: start + offset + 4, length: Int(valueLength))!
            switch attributeType {
            case .messageIntegrity where !ignoreRest && integrityOffset == nil:
                guard valueLength == 20 else { throw STUNError(.badAttribute, "MESSAGE-INTEGRITY must be 20 bytes") }
                integrityOffset = offset
                attributes.append(STUNAttribute(type: attributeType, value: value))
            case .messageIntegritySHA256 where integritySHA256Offset == nil:
                guard valueLength >= 16, valueLength <= 32, valueLength % 4 == 0 else {
                    throw STUNError(.badAttribute, "MESSAGE-INTEGRITY-SHA256 must be 16 to 32 bytes, a multiple of 4")
                }
                integritySHA256Offset = offset
                ignoreRest = true
                attributes.append(STUNAttribute(type: attributeType, value: value))
            case .fingerprint:
                guard valueLength == 4 else { throw STUNError(.badAttribute, "FINGERPRINT must be 4 bytes") }
                let expected = value.getInteger(at: value.readerIndex, as: UInt32.self)!
                let actual = buffer.withUnsafeReadableBytes { CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<offset])) }
                guard expected == actual ^ 0x5354_554E else {
                    throw STUNError(.badFingerprint, "FINGERPRINT does not match the message")
                }
                hasFingerprint = true
                attributes.append(STUNAttribute(type: attributeType, value: value))
            default:
                // RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY other than
                // MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored.
                if integrityOffset == nil && !ignoreRest {
                    attributes.append(STUNAttribute(type: attributeType, value: value))
                }
            }
            offset += 4 + padded
        }
    }

    /// The first value of an attribute type.
    public func attribute(_ type: STUNAttributeType) -> ByteBuffer? {
        attributes.first { $0.type == type }?.value
    }

    /// All values of an attribute type, in order (CreatePermission may carry several peers).
    public func attributes(_ type: STUNAttributeType) -> [ByteBuffer] {
        attributes.filter { $0.type == type }.map(\.value)
    }

    public func has(_ type: STUNAttributeType) -> Bool { attributes.contains { $0.type == type } }

    /// Comprehension-required attributes this implementation does not know (RFC 8489 §6.3.1).
    public var unknownComprehensionRequired: [STUNAttributeType] {
        attributes.map(\.type).filter { $0.isComprehensionRequired && !STUNAttributeType.understood.contains($0) }
    }

    /// Which integrity attributes to append when encoding.
    public enum IntegrityAlgorithm: Sendable {
        case sha1
        case sha256
    }

    /// Encodes the message, appending MESSAGE-INTEGRITY(-SHA256) computed with `key` (RFC 8489 §14.5,
    /// §14.6) and FINGERPRINT (§14.7) when asked.
    public func encode(integrity key: [UInt8]? = nil, algorithm: IntegrityAlgorithm = .sha1, fingerprint: Bool = false,
                       allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var capacity = Self.headerLength + 36 + 8
        for attribute in attributes { capacity += 4 + ((attribute.value.readableBytes + 3) & ~3) }
        var buffer = allocator.buffer(capacity: capacity)
        buffer.writeMultipleIntegers(type.wire, UInt16(0), Self.magicCookie, transactionID.high, transactionID.low)
        for attribute in attributes { Self.writeAttribute(attribute.type, attribute.value, into: &buffer) }
        if let key {
            let macType: STUNAttributeType = algorithm == .sha1 ? .messageIntegrity : .messageIntegritySHA256
            let macLength = algorithm == .sha1 ? 20 : 32
            buffer.setInteger(UInt16(buffer.writerIndex - Self.headerLength + 4 + macLength), at: 2)
            let mac = buffer.withUnsafeReadableBytes { bytes in
                algorithm == .sha1 ? Digest.hmacSHA1(key: key, data: bytes) : Digest.hmacSHA256(key: key, data: bytes)
            }
            Self.writeAttribute(macType, ByteBuffer(bytes: mac), into: &buffer)
        }
        if fingerprint {
            buffer.setInteger(UInt16(buffer.writerIndex - Self.headerLength + 8), at: 2)
            let crc = buffer.withUnsafeReadableBytes { CRC32.checksum($0) } ^ 0x5354_554E
            buffer.writeMultipleIntegers(STUNAttributeType.fingerprint.rawValue, UInt16(4), crc)
        }
        buffer.setInteger(UInt16(buffer.writerIndex - Self.headerLength), at: 2)
        return buffer
    }

    static func writeAttribute(_ type: STUNAttributeType, _ value: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(type.rawValue, UInt16(value.readableBytes))
        var value = value
        buffer.writeBuffer(&value)
        let padding = (4 - buffer.writerIndex % 4) % 4
        if padding > 0 { buffer.writeRepeatingByte(0, count: padding) }
    }

    /// Verifies MESSAGE-INTEGRITY (and MESSAGE-INTEGRITY-SHA256 when present) of a parsed
    /// message with `key`. False when the message carries neither.
    public func verifyIntegrity(key: [UInt8]) -> Bool {
        guard let raw else { return false }
        var checked = false
        if let offset = integrityOffset {
            guard verifyMAC(raw: raw, offset: offset, macLength: 20, key: key, sha256: false) else { return false }
            checked = true
        }
        if let offset = integritySHA256Offset {
            let length = Int(raw.getInteger(at: raw.readerIndex + offset + 2, as: UInt16.self)!)
            guard verifyMAC(raw: raw, offset: offset, macLength: length, key: key, sha256: true) else { return false }
            checked = true
        }
        return checked
    }

    /// Whether the message carries a MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 attribute.
    public var hasIntegrity: Bool { integrityOffset != nil || integritySHA256Offset != nil }

    private func verifyMAC(raw: ByteBuffer, offset: Int, macLength: Int, key: [UInt8], sha256: Bool) -> Bool {
        // RFC 8489 §14.5: the length field covers the message up to and including this attribute.
        var covered = raw.getBytes(at: raw.readerIndex, length: offset)!
        let length = UInt16(offset - Self.headerLength + 4 + macLength)
        covered[2] = UInt8(length >> 8)
        covered[3] = UInt8(length & 0xFF)
        let received = raw.getBytes(at: raw.readerIndex + offset + 4, length: macLength)!
        let computed = sha256 ? Digest.hmacSHA256(key: key, bytes: covered) : Digest.hmacSHA1(key: key, bytes: covered)
        return Digest.constantTimeEqual(computed.prefix(macLength), received)
    }
}
