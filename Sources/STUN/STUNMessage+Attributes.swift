import NIOCore

/// Typed reading and writing of the attributes STUN, TURN and ICE use.
extension STUNMessage {
    // MARK: Strings (USERNAME, REALM, NONCE, SOFTWARE: UTF-8, RFC 8489 §14.3, §14.9, §14.10, §14.14)

    public func string(_ type: STUNAttributeType) -> String? {
        guard let value = attribute(type) else { return nil }
        return value.getString(at: value.readerIndex, length: value.readableBytes)
    }

    public mutating func append(_ type: STUNAttributeType, string: String) {
        append(type, bytes: Array(string.utf8))
    }

    public mutating func append(_ type: STUNAttributeType, bytes: [UInt8]) {
        attributes.append(STUNAttribute(type: type, value: ByteBuffer(bytes: bytes)))
    }

    public mutating func append(_ type: STUNAttributeType, buffer: ByteBuffer) {
        attributes.append(STUNAttribute(type: type, value: buffer))
    }

    public mutating func append(_ type: STUNAttributeType, uint32: UInt32) {
        var buffer = ByteBuffer()
        buffer.writeInteger(uint32)
        append(type, buffer: buffer)
    }

    public mutating func append(_ type: STUNAttributeType, uint64: UInt64) {
        var buffer = ByteBuffer()
        buffer.writeInteger(uint64)
        append(type, buffer: buffer)
    }

    /// A flag attribute with an empty value (USE-CANDIDATE, DONT-FRAGMENT).
    public mutating func append(flag type: STUNAttributeType) {
        append(type, buffer: ByteBuffer())
    }

    public var username: String? { string(.username) }
    public var realm: String? { string(.realm) }
    public var nonce: String? { string(.nonce) }
    public var software: String? { string(.software) }

    // MARK: Integers

    public func uint32(_ type: STUNAttributeType) throws(STUNError) -> UInt32? {
        guard let value = attribute(type) else { return nil }
        guard value.readableBytes == 4, let v = value.getInteger(at: value.readerIndex, as: UInt32.self) else {
            throw STUNError(.badAttribute, "\(type) must be 4 bytes")
        }
        return v
    }

    public func uint64(_ type: STUNAttributeType) throws(STUNError) -> UInt64? {
        guard let value = attribute(type) else { return nil }
        guard value.readableBytes == 8, let v = value.getInteger(at: value.readerIndex, as: UInt64.self) else {
            throw STUNError(.badAttribute, "\(type) must be 8 bytes")
        }
        return v
    }

    /// LIFETIME in seconds (RFC 8656 §18.2).
    public func lifetime() throws(STUNError) -> UInt32? { try uint32(.lifetime) }

    /// CONNECTION-ID (RFC 6062 §6.2.1).
    public func connectionID() throws(STUNError) -> UInt32? { try uint32(.connectionID) }

    /// CHANNEL-NUMBER (RFC 8656 §18.1): a 16-bit number followed by 16 reserved bits.
    public func channelNumber() throws(STUNError) -> UInt16? {
        guard let v = try uint32(.channelNumber) else { return nil }
        return UInt16(v >> 16)
    }

    public mutating func appendChannelNumber(_ channel: UInt16) {
        append(.channelNumber, uint32: UInt32(channel) << 16)
    }

    /// REQUESTED-TRANSPORT (RFC 8656 §18.8): the protocol number, then 24 reserved bits.
    public func requestedTransport() throws(STUNError) -> TURNTransportProtocol? {
        guard let v = try uint32(.requestedTransport) else { return nil }
        return TURNTransportProtocol(rawValue: UInt8(v >> 24))
    }

    public mutating func appendRequestedTransport(_ transport: TURNTransportProtocol) {
        append(.requestedTransport, uint32: UInt32(transport.rawValue) << 24)
    }

    /// A family attribute (REQUESTED-ADDRESS-FAMILY, ADDITIONAL-ADDRESS-FAMILY; RFC 8656 §18.6,
    /// §18.11): the family, then 24 reserved bits.
    public func addressFamily(_ type: STUNAttributeType) throws(STUNError) -> STUNAddressFamily? {
        guard let v = try uint32(type) else { return nil }
        return STUNAddressFamily(rawValue: UInt8(v >> 24))
    }

    public mutating func appendAddressFamily(_ type: STUNAttributeType, _ family: STUNAddressFamily) {
        append(type, uint32: UInt32(family.rawValue) << 24)
    }

    /// EVEN-PORT's R bit (RFC 8656 §18.7): reserve the next port as well.
    public func evenPort() throws(STUNError) -> (reserveNext: Bool, present: Bool) {
        guard let value = attribute(.evenPort) else { return (false, false) }
        guard value.readableBytes == 1, let byte = value.getInteger(at: value.readerIndex, as: UInt8.self) else {
            throw STUNError(.badAttribute, "EVEN-PORT must be 1 byte")
        }
        return (byte & 0x80 != 0, true)
    }

    /// CHANGE-REQUEST flags (RFC 5780 §7.2): change IP (0x4) and change port (0x2).
    public func changeRequest() throws(STUNError) -> (changeIP: Bool, changePort: Bool)? {
        guard let v = try uint32(.changeRequest) else { return nil }
        return (v & 0x4 != 0, v & 0x2 != 0)
    }

    // MARK: ERROR-CODE (RFC 8489 §14.8)

    public func errorCode() throws(STUNError) -> (code: STUNErrorCode, reason: String)? {
        guard let value = attribute(.errorCode) else { return nil }
        guard value.readableBytes >= 4,
              let (_, cls, number) = value.getMultipleIntegers(at: value.readerIndex, as: (UInt16, UInt8, UInt8).self)
        else { throw STUNError(.badAttribute, "ERROR-CODE shorter than 4 bytes") }
        let code = Int(cls & 0x07) * 100 + Int(number)
        guard (300...699).contains(code), number < 100 else {
            throw STUNError(.badAttribute, "ERROR-CODE \(code) out of range")
        }
        let reason = value.getString(at: value.readerIndex + 4, length: value.readableBytes - 4) ?? ""
        return (STUNErrorCode(rawValue: code), reason)
    }

    public mutating func appendErrorCode(_ code: STUNErrorCode, reason: String? = nil) {
        append(.errorCode, buffer: Self.errorValue(first: 0, code, reason: reason))
    }

    /// ADDRESS-ERROR-CODE (RFC 8656 §18.12): why no relayed address of `family` was allocated;
    /// laid out as ERROR-CODE with the family in the first byte.
    public mutating func appendAddressErrorCode(family: STUNAddressFamily, _ code: STUNErrorCode, reason: String? = nil) {
        append(.addressErrorCode, buffer: Self.errorValue(first: family.rawValue, code, reason: reason))
    }

    private static func errorValue(first: UInt8, _ code: STUNErrorCode, reason: String?) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeMultipleIntegers(first, UInt8(0), UInt8(code.rawValue / 100), UInt8(code.rawValue % 100))
        // RFC 8489 §14.8: at most 128 characters (763 bytes).
        buffer.writeString(String((reason ?? code.reasonPhrase).utf8.prefix(763)) ?? code.reasonPhrase)
        return buffer
    }

    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.13).
    public mutating func appendUnknownAttributes(_ types: [STUNAttributeType]) {
        var buffer = ByteBuffer()
        for type in types { buffer.writeInteger(type.rawValue) }
        append(.unknownAttributes, buffer: buffer)
    }

    public func unknownAttributes() -> [STUNAttributeType] {
        guard var value = attribute(.unknownAttributes) else { return [] }
        var types: [STUNAttributeType] = []
        while let raw = value.readInteger(as: UInt16.self) { types.append(STUNAttributeType(rawValue: raw)) }
        return types
    }

    // MARK: Addresses (RFC 8489 §14.1, §14.2)

    /// Reads an XOR-encoded address attribute (XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS).
    public func xorAddress(_ type: STUNAttributeType) throws(STUNError) -> SocketAddress? {
        guard let value = attribute(type) else { return nil }
        return try decodeAddress(value, xor: true, type: type)
    }

    /// All XOR-PEER-ADDRESS values (a CreatePermission may carry several, RFC 8656 §9.1).
    public func xorAddresses(_ type: STUNAttributeType) throws(STUNError) -> [SocketAddress] {
        var result: [SocketAddress] = []
        for value in attributes(type) { result.append(try decodeAddress(value, xor: true, type: type)) }
        return result
    }

    /// Reads a plain address attribute (MAPPED-ADDRESS, OTHER-ADDRESS, RESPONSE-ORIGIN, ALTERNATE-SERVER).
    public func address(_ type: STUNAttributeType) throws(STUNError) -> SocketAddress? {
        guard let value = attribute(type) else { return nil }
        return try decodeAddress(value, xor: false, type: type)
    }

    public mutating func appendXORAddress(_ type: STUNAttributeType, _ address: SocketAddress) {
        append(type, buffer: encodeAddress(address, xor: true))
    }

    public mutating func appendAddress(_ type: STUNAttributeType, _ address: SocketAddress) {
        append(type, buffer: encodeAddress(address, xor: false))
    }

    /// The bytes an IPv6 address is XORed with: the magic cookie then the transaction ID.
    private var xorMask: [UInt8] {
        withUnsafeBytes(of: Self.magicCookie.bigEndian, Array.init) + transactionID.bytes
    }

    private func decodeAddress(_ value: ByteBuffer, xor: Bool, type: STUNAttributeType) throws(STUNError) -> SocketAddress {
        guard let (_, family, rawPort) = value.getMultipleIntegers(at: value.readerIndex, as: (UInt8, UInt8, UInt16).self) else {
            throw STUNError(.badAddress, "\(type) shorter than 4 bytes")
        }
        let length: Int
        switch STUNAddressFamily(rawValue: family) {
        case .ipv4: length = 4
        case .ipv6: length = 16
        default: throw STUNError(.badAddress, "\(type) has unknown address family \(family)")
        }
        guard value.readableBytes == 4 + length, var bytes = value.getBytes(at: value.readerIndex + 4, length: length) else {
            throw STUNError(.badAddress, "\(type) length \(value.readableBytes) does not fit family \(family)")
        }
        var port = rawPort
        if xor {
            port ^= UInt16(Self.magicCookie >> 16)
            let mask = xorMask
            for i in bytes.indices { bytes[i] ^= mask[i] }
        }
        do {
            return try SocketAddress(packedIPAddress: ByteBuffer(bytes: bytes), port: Int(port))
        } catch {
            throw STUNError(.badAddress, "\(type) holds an unusable address")
        }
    }

    private func encodeAddress(_ address: SocketAddress, xor: Bool) -> ByteBuffer {
        var buffer = ByteBuffer()
        guard let ip = IPAddress(address) else { return buffer }
        var bytes = ip.bytes
        var port = UInt16(truncatingIfNeeded: address.port ?? 0)
        if xor {
            port ^= UInt16(Self.magicCookie >> 16)
            let mask = xorMask
            for i in bytes.indices { bytes[i] ^= mask[i] }
        }
        buffer.writeMultipleIntegers(UInt8(0), (ip.isIPv4 ? STUNAddressFamily.ipv4 : .ipv6).rawValue, port)
        buffer.writeBytes(bytes)
        return buffer
    }
}

/// A password algorithm of PASSWORD-ALGORITHM(S) (RFC 8489 §14.11, §14.12, §18.5).
public struct STUNPasswordAlgorithm: Hashable, Sendable {
    public var number: UInt16
    public var parameters: [UInt8]

    public init(number: UInt16, parameters: [UInt8] = []) {
        self.number = number
        self.parameters = parameters
    }

    public static let md5 = STUNPasswordAlgorithm(number: 0x0001)
    public static let sha256 = STUNPasswordAlgorithm(number: 0x0002)
}

extension STUNMessage {
    /// PASSWORD-ALGORITHMS: the algorithms a server offers, in its order of preference.
    public func passwordAlgorithms() throws(STUNError) -> [STUNPasswordAlgorithm] {
        guard var value = attribute(.passwordAlgorithms) else { return [] }
        var result: [STUNPasswordAlgorithm] = []
        while value.readableBytes > 0 {
            result.append(try Self.readPasswordAlgorithm(&value))
        }
        return result
    }

    /// PASSWORD-ALGORITHM: the one a client chose.
    public func passwordAlgorithm() throws(STUNError) -> STUNPasswordAlgorithm? {
        guard var value = attribute(.passwordAlgorithm) else { return nil }
        let algorithm = try Self.readPasswordAlgorithm(&value)
        guard value.readableBytes == 0 else { throw STUNError(.badAttribute, "PASSWORD-ALGORITHM has trailing bytes") }
        return algorithm
    }

    public mutating func appendPasswordAlgorithms(_ algorithms: [STUNPasswordAlgorithm]) {
        var buffer = ByteBuffer()
        for algorithm in algorithms { Self.writePasswordAlgorithm(algorithm, into: &buffer) }
        append(.passwordAlgorithms, buffer: buffer)
    }

    public mutating func appendPasswordAlgorithm(_ algorithm: STUNPasswordAlgorithm) {
        var buffer = ByteBuffer()
        Self.writePasswordAlgorithm(algorithm, into: &buffer)
        append(.passwordAlgorithm, buffer: buffer)
    }

    private static func readPasswordAlgorithm(_ value: inout ByteBuffer) throws(STUNError) -> STUNPasswordAlgorithm {
        guard let (number, length) = value.readMultipleIntegers(as: (UInt16, UInt16).self),
              let parameters = value.readBytes(length: Int(length)) else {
            throw STUNError(.badAttribute, "truncated password algorithm")
        }
        // Parameters are padded to 4 bytes inside the attribute.
        let padding = (4 - Int(length) % 4) % 4
        guard value.readableBytes >= padding || padding == 0 else {
            throw STUNError(.badAttribute, "password algorithm parameters lack their padding")
        }
        value.moveReaderIndex(forwardBy: min(padding, value.readableBytes))
        return STUNPasswordAlgorithm(number: number, parameters: parameters)
    }

    private static func writePasswordAlgorithm(_ algorithm: STUNPasswordAlgorithm, into buffer: inout ByteBuffer) {
        buffer.writeMultipleIntegers(algorithm.number, UInt16(algorithm.parameters.count))
        buffer.writeBytes(algorithm.parameters)
        buffer.writeRepeatingByte(0, count: (4 - algorithm.parameters.count % 4) % 4)
    }
}
