import NIOCore

/// An IP address without a port: the key of TURN permissions (RFC 8656 §9) and the unit of
/// the relay address policy.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt64, UInt64)

    /// The IP of a socket address; nil for Unix domain sockets.
    public init?(_ address: SocketAddress) {
        switch address {
        case .v4(let a):
            self = .v4(UInt32(bigEndian: a.address.sin_addr.s_addr))
        case .v6(let a):
            var storage = a.address.sin6_addr
            self = withUnsafeBytes(of: &storage) { raw in
                .v6(UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
        case .unixDomainSocket:
            return nil
        }
    }

    /// Parses a numeric IPv4 or IPv6 address (no host names).
    public init?(string: String) {
        let trimmed = string.hasPrefix("[") && string.hasSuffix("]") ? String(string.dropFirst().dropLast()) : string
        guard let address = try? SocketAddress(ipAddress: trimmed, port: 0), let ip = IPAddress(address) else { return nil }
        self = ip
    }

    /// Network-order bytes (4 or 16).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let a): return withUnsafeBytes(of: a.bigEndian, Array.init)
        case .v6(let hi, let lo): return withUnsafeBytes(of: hi.bigEndian, Array.init) + withUnsafeBytes(of: lo.bigEndian, Array.init)
        }
    }

    public var isIPv4: Bool { if case .v4 = self { true } else { false } }

    /// The socket address of this IP and a port.
    public func socketAddress(port: Int) -> SocketAddress {
        var buffer = ByteBuffer(bytes: bytes)
        // Cannot fail: the buffer holds exactly 4 or 16 bytes.
        return try! SocketAddress(packedIPAddress: buffer.readSlice(length: buffer.readableBytes)!, port: port)
    }

    public var description: String {
        let text = socketAddress(port: 0).ipAddress ?? "?"
        return text
    }
}

/// An address block such as `10.0.0.0/8` or `fc00::/7`.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public var address: IPAddress
    public var prefixLength: Int

    public init(_ address: IPAddress, _ prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `ADDR/LEN` or a bare address (a host block).
    public init?(string: String) {
        let parts = string.split(separator: "/", maxSplits: 1).map(String.init)
        guard let first = parts.first, let ip = IPAddress(string: first) else { return nil }
        let maxLength = ip.isIPv4 ? 32 : 128
        let length = parts.count == 2 ? Int(parts[1]) : maxLength
        guard let length, (0...maxLength).contains(length) else { return nil }
        self.init(ip, length)
    }

    public func contains(_ ip: IPAddress) -> Bool {
        switch (address, ip) {
        case (.v4(let net), .v4(let a)):
            guard prefixLength > 0 else { return true }
            let mask = UInt32.max << (32 - prefixLength)
            return net & mask == a & mask
        case (.v6(let nhi, let nlo), .v6(let hi, let lo)):
            if prefixLength <= 64 {
                guard prefixLength > 0 else { return true }
                let mask = UInt64.max << (64 - prefixLength)
                return nhi & mask == hi & mask
            }
            let mask = prefixLength == 128 ? UInt64.max : UInt64.max << (128 - prefixLength)
            return nhi == hi && nlo & mask == lo & mask
        default:
            return false
        }
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

extension IPAddress {
    /// What a per-source connection cap counts this address under: an IPv4 address as it is
    /// (also when it arrives IPv4-mapped on a dual-stack socket), an IPv6 address by its /64,
    /// since a single host commonly holds a whole /64 (RFC 7421).
    public var connectionSource: IPAddress {
        switch self {
        case .v4: return self
        case .v6(0, let low) where low >> 32 == 0xFFFF: return .v4(UInt32(truncatingIfNeeded: low))
        case .v6(let high, _): return .v6(high, 0)
        }
    }
}
