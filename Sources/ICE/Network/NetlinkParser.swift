import NIOCore
import STUN

/// An address of a local interface as the kernel reports it (rtnetlink `ifaddrmsg`, RFC 3549 §2.3.3.2).
public struct InterfaceAddress: Hashable, Sendable, CustomStringConvertible {
    /// How far the address reaches (`ifa_scope`).
    public enum Scope: Hashable, Sendable {
        /// Reaches beyond this host and link (RT_SCOPE_UNIVERSE).
        case global
        /// Valid on its link only (RT_SCOPE_LINK: fe80::/10, 169.254/16).
        case link
        /// This host only (RT_SCOPE_HOST: 127.0.0.1, ::1).
        case host
        /// Another scope (site, or a number from a newer kernel).
        case other(UInt8)
    }

    /// The interface's index (`ifa_index`).
    public var interfaceIndex: Int
    /// The local address (IFA_LOCAL, or IFA_ADDRESS when the message has no IFA_LOCAL).
    public var address: IPAddress
    /// The prefix length of the interface's network.
    public var prefixLength: Int
    public var scope: Scope
    /// Still being checked for duplicates (IPv6 DAD, RFC 4862 §5.4), failed that check, or
    /// deprecated: a socket should not take it as its source for a new path.
    public var isTentativeOrDeprecated: Bool
    /// The interface's name for IPv4 (IFA_LABEL), when the kernel sends it.
    public var label: String?

    /// Creates an interface address from its fields.
    public init(interfaceIndex: Int, address: IPAddress, prefixLength: Int, scope: Scope = .global,
                isTentativeOrDeprecated: Bool = false, label: String? = nil) {
        self.interfaceIndex = interfaceIndex
        self.address = address
        self.prefixLength = prefixLength
        self.scope = scope
        self.isTentativeOrDeprecated = isTentativeOrDeprecated
        self.label = label
    }

    /// Whether a peer can reach the internet from this address: global scope and settled.
    /// Loopback and link-local addresses come and go without changing any path a call uses.
    public var isUsable: Bool { scope == .global && !isTentativeOrDeprecated }

    public var description: String { "\(address)/\(prefixLength) on \(label ?? "if\(interfaceIndex)")" }
}

/// What one rtnetlink message says changed on this host.
public enum NetworkEvent: Hashable, Sendable {
    /// RTM_NEWADDR: an address was added (or its flags changed, as when IPv6 DAD completes).
    case addressAdded(InterfaceAddress)
    /// RTM_DELADDR: an address went away; sockets bound to it can send no more.
    case addressRemoved(InterfaceAddress)
    /// RTM_NEWLINK / RTM_DELLINK: an interface changed (up, down, created) or was removed.
    case linkChanged(interfaceIndex: Int, isUp: Bool)
    /// RTM_NEWROUTE / RTM_DELROUTE in the main table; `isDefault` for a route to 0/0 (the one
    /// that decides which interface reaches the internet).
    case routeChanged(isDefault: Bool)
}

/// Parses the datagrams of an rtnetlink socket (`NETLINK_ROUTE`, RFC 3549; the layouts of
/// `<linux/netlink.h>`, `<linux/rtnetlink.h>`, `<linux/if_addr.h>`, in host byte order).
///
/// Every length is checked against what the datagram holds: a message whose `nlmsg_len` runs
/// past the datagram, a payload shorter than its fixed header, an attribute whose `rta_len` is
/// below 4 or past its message, or an address whose length does not match its family rejects
/// the whole datagram with ``ICEError/Code/malformedNetlink``: after a bad length nothing after
/// it can be framed. Message types other than links, addresses and routes (NLMSG_NOOP,
/// NLMSG_DONE, neighbours, …) are skipped.
public enum NetlinkParser {
    // <linux/netlink.h> and <linux/rtnetlink.h>.
    static let headerLength = 16
    static let newLink: UInt16 = 16, deleteLink: UInt16 = 17
    static let newAddress: UInt16 = 20, deleteAddress: UInt16 = 21
    static let newRoute: UInt16 = 24, deleteRoute: UInt16 = 25
    static let familyIPv4: UInt8 = 2, familyIPv6: UInt8 = 10
    // <linux/if_addr.h>: attribute types and flags.
    static let attributeAddress: UInt16 = 1, attributeLocal: UInt16 = 2, attributeLabel: UInt16 = 3, attributeFlags: UInt16 = 8
    static let flagDADFailed: UInt32 = 0x08, flagDeprecated: UInt32 = 0x20, flagTentative: UInt32 = 0x40
    /// RT_TABLE_MAIN: routes `ip route` shows; the local and other tables do not pick a path out.
    static let mainTable: UInt8 = 254

    /// The events in one datagram, in order.
    public static func parse(_ datagram: ByteBuffer) throws(ICEError) -> [NetworkEvent] {
        var buffer = datagram
        var events: [NetworkEvent] = []
        while buffer.readableBytes > 0 {
            guard let (length, type, _, _, _) = buffer.getMultipleIntegers(
                at: buffer.readerIndex, endianness: .host, as: (UInt32, UInt16, UInt16, UInt32, UInt32).self) else {
                throw malformed("\(buffer.readableBytes) bytes left, less than a netlink header (16)")
            }
            guard Int(length) >= headerLength, Int(length) <= buffer.readableBytes else {
                throw malformed("nlmsg_len \(length) with \(buffer.readableBytes) bytes left")
            }
            var message = buffer.getSlice(at: buffer.readerIndex + headerLength, length: Int(length) - headerLength)!
            // NLMSG_ALIGN: the next message starts on a 4-byte boundary; the last may end unpadded.
            buffer.moveReaderIndex(forwardBy: min(align(Int(length)), buffer.readableBytes))
            switch type {
            case newAddress, deleteAddress:
                if let address = try parseAddress(&message) {
                    events.append(type == newAddress ? .addressAdded(address) : .addressRemoved(address))
                }
            case newLink, deleteLink:
                // struct ifinfomsg: family, pad, type (16), index (s32), flags (32), change (32).
                guard let (_, _, _, index, flags, _) = message.readMultipleIntegers(
                    endianness: .host, as: (UInt8, UInt8, UInt16, Int32, UInt32, UInt32).self) else {
                    throw malformed("a link message of \(message.readableBytes) bytes, less than ifinfomsg (16)")
                }
                try checkAttributes(&message)
                // IFF_UP (0x1) and IFF_RUNNING (0x40): administratively up and carrier present.
                events.append(.linkChanged(interfaceIndex: Int(index), isUp: type == newLink && flags & 0x41 == 0x41))
            case newRoute, deleteRoute:
                // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (32).
                guard let (_, destinationLength, _, _, table, _, _, _, _) = message.readMultipleIntegers(
                    endianness: .host, as: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt32).self) else {
                    throw malformed("a route message of \(message.readableBytes) bytes, less than rtmsg (12)")
                }
                try checkAttributes(&message)
                // A table number above 255 comes as RTA_TABLE with rtm_table RT_TABLE_COMPAT (252): not main.
                if table == mainTable { events.append(.routeChanged(isDefault: destinationLength == 0)) }
            default:
                continue
            }
        }
        return events
    }

    /// One `ifaddrmsg` and its attributes; nil for a family other than IPv4 and IPv6.
    private static func parseAddress(_ message: inout ByteBuffer) throws(ICEError) -> InterfaceAddress? {
        guard let (family, prefixLength, flags, scope, index) = message.readMultipleIntegers(
            endianness: .host, as: (UInt8, UInt8, UInt8, UInt8, UInt32).self) else {
            throw malformed("an address message of \(message.readableBytes) bytes, less than ifaddrmsg (8)")
        }
        guard family == familyIPv4 || family == familyIPv6 else {
            // Another family's address (AF_DECnet, AF_MPLS, …): framed, then skipped.
            try checkAttributes(&message)
            return nil
        }
        var local: IPAddress?
        var peer: IPAddress?
        var label: String?
        var allFlags = UInt32(flags)
        for (type, var value) in try attributes(&message) {
            switch type {
            case attributeAddress: peer = try address(family: family, &value)
            case attributeLocal: local = try address(family: family, &value)
            case attributeLabel:
                // A NUL-terminated interface name (IFNAMSIZ 16 with the NUL).
                guard value.readableBytes <= 16, let text = value.readString(length: value.readableBytes) else {
                    throw malformed("IFA_LABEL of \(value.readableBytes) bytes")
                }
                label = String(text.prefix { $0 != "\0" })
            case attributeFlags:
                // IFA_FLAGS carries all 32 bits; the header's ifa_flags only the low 8.
                guard value.readableBytes == 4, let extended = value.readInteger(endianness: .host, as: UInt32.self) else {
                    throw malformed("IFA_FLAGS of \(value.readableBytes) bytes, not 4")
                }
                allFlags |= extended
            default:
                continue
            }
        }
        // IPv4 point-to-point links put the peer in IFA_ADDRESS and this host's in IFA_LOCAL;
        // IPv6 sends IFA_ADDRESS only.
        guard let address = local ?? peer else { throw malformed("an address message without IFA_LOCAL or IFA_ADDRESS") }
        guard Int(prefixLength) <= (family == familyIPv4 ? 32 : 128) else {
            throw malformed("prefix length \(prefixLength) for \(family == familyIPv4 ? "IPv4" : "IPv6")")
        }
        let kind: InterfaceAddress.Scope = switch scope {
        case 0: .global
        case 253: .link
        case 254: .host
        default: .other(scope)
        }
        return InterfaceAddress(interfaceIndex: Int(index), address: address, prefixLength: Int(prefixLength), scope: kind,
                                isTentativeOrDeprecated: allFlags & (flagTentative | flagDeprecated | flagDADFailed) != 0, label: label)
    }

    /// The `rtattr`s that fill the rest of a message: (`rta_type`, value).
    private static func attributes(_ message: inout ByteBuffer) throws(ICEError) -> [(UInt16, ByteBuffer)] {
        var result: [(UInt16, ByteBuffer)] = []
        while message.readableBytes > 0 {
            guard let (length, type) = message.readMultipleIntegers(endianness: .host, as: (UInt16, UInt16).self) else {
                throw malformed("\(message.readableBytes) bytes left, less than an attribute header (4)")
            }
            guard length >= 4, Int(length) - 4 <= message.readableBytes else {
                throw malformed("rta_len \(length) with \(message.readableBytes + 4) bytes left")
            }
            let value = message.readSlice(length: Int(length) - 4)!
            // RTA_ALIGN: padding to 4 bytes, except after the last attribute.
            message.moveReaderIndex(forwardBy: min(align(Int(length)) - Int(length), message.readableBytes))
            // NLA_TYPE_MASK: the top two bits are flags (nested, network byte order).
            result.append((type & 0x3FFF, value))
        }
        return result
    }

    private static func checkAttributes(_ message: inout ByteBuffer) throws(ICEError) {
        _ = try attributes(&message)
    }

    private static func address(family: UInt8, _ value: inout ByteBuffer) throws(ICEError) -> IPAddress {
        switch (family, value.readableBytes) {
        case (familyIPv4, 4):
            return .v4(value.readInteger(endianness: .big, as: UInt32.self)!)
        case (familyIPv6, 16):
            let (high, low) = value.readMultipleIntegers(endianness: .big, as: (UInt64, UInt64).self)!
            return .v6(high, low)
        default:
            throw malformed("an address of \(value.readableBytes) bytes for family \(family)")
        }
    }

    private static func align(_ length: Int) -> Int { (length + 3) & ~3 }

    private static func malformed(_ reason: String) -> ICEError {
        ICEError(.malformedNetlink, "malformed rtnetlink datagram: \(reason)")
    }
}
