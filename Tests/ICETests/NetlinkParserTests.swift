import ICE
import NIOCore
import STUN
import Testing

/// Builds rtnetlink datagrams byte by byte, in host byte order as the kernel sends them
/// (`<linux/netlink.h>`, `<linux/rtnetlink.h>`, `<linux/if_addr.h>`).
struct NetlinkBytes {
    var buffer = ByteBuffer()

    /// One message: the 16-byte nlmsghdr, then `payload`, padded to 4 bytes.
    mutating func message(type: UInt16, payload: ByteBuffer, length: UInt32? = nil, pad: Bool = true) {
        buffer.writeInteger(length ?? UInt32(16 + payload.readableBytes), endianness: .host)
        buffer.writeInteger(type, endianness: .host)
        buffer.writeInteger(UInt16(0), endianness: .host) // flags
        buffer.writeInteger(UInt32(0), endianness: .host) // seq
        buffer.writeInteger(UInt32(0), endianness: .host) // pid
        buffer.writeImmutableBuffer(payload)
        if pad { buffer.writeRepeatingByte(0, count: (4 - payload.readableBytes % 4) % 4) }
    }

    /// struct ifaddrmsg and its attributes.
    static func address(family: UInt8, prefix: UInt8, flags: UInt8 = 0, scope: UInt8 = 0, index: UInt32,
                        attributes: [(UInt16, [UInt8])]) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeMultipleIntegers(family, prefix, flags, scope, endianness: .host)
        payload.writeInteger(index, endianness: .host)
        for (type, value) in attributes { attribute(&payload, type: type, value: value) }
        return payload
    }

    /// struct ifinfomsg (16 bytes) and an IFLA_IFNAME.
    static func link(index: Int32, flags: UInt32, name: String) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeMultipleIntegers(UInt8(0), UInt8(0), UInt16(1), endianness: .host)
        payload.writeMultipleIntegers(index, flags, UInt32(0), endianness: .host)
        attribute(&payload, type: 3, value: Array(name.utf8) + [0])
        return payload
    }

    /// struct rtmsg (12 bytes), no attributes.
    static func route(destinationLength: UInt8, table: UInt8) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeMultipleIntegers(UInt8(2), destinationLength, UInt8(0), UInt8(0), table, UInt8(3), UInt8(0), UInt8(1), endianness: .host)
        payload.writeInteger(UInt32(0), endianness: .host)
        return payload
    }

    static func attribute(_ buffer: inout ByteBuffer, type: UInt16, value: [UInt8], length: UInt16? = nil) {
        buffer.writeInteger(length ?? UInt16(4 + value.count), endianness: .host)
        buffer.writeInteger(type, endianness: .host)
        buffer.writeBytes(value)
        buffer.writeRepeatingByte(0, count: (4 - value.count % 4) % 4)
    }

    static let ipv4: [UInt8] = [10, 0, 26, 2]
    static let ipv6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0x02, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
}

@Suite struct NetlinkParserTests {
    static func expectMalformed(_ datagram: ByteBuffer, _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try NetlinkParser.parse(datagram)
            Issue.record("accepted: \(comment)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == .malformedNetlink, comment, sourceLocation: sourceLocation)
        }
    }

    @Test func anIPv4AddressAddedWithItsLabelAndFlags() throws {
        var bytes = NetlinkBytes()
        // `ip addr add 100.64.3.2/24 dev rmnet0`: IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS.
        bytes.message(type: 20, payload: NetlinkBytes.address(family: 2, prefix: 24, index: 7, attributes: [
            (1, [100, 64, 3, 2]), (2, [100, 64, 3, 2]), (3, Array("rmnet0".utf8) + [0]), (8, [0x80, 0, 0, 0]),
        ]))
        let events = try NetlinkParser.parse(bytes.buffer)
        let expected = InterfaceAddress(interfaceIndex: 7, address: IPAddress(string: "100.64.3.2")!, prefixLength: 24, label: "rmnet0")
        #expect(events == [.addressAdded(expected)])
        #expect(expected.isUsable)
    }

    @Test func pointToPointTakesTheLocalAddressNotThePeer() throws {
        var bytes = NetlinkBytes()
        bytes.message(type: 21, payload: NetlinkBytes.address(family: 2, prefix: 32, index: 3, attributes: [
            (1, [192, 0, 2, 1]), (2, NetlinkBytes.ipv4),
        ]))
        guard case .addressRemoved(let address) = try NetlinkParser.parse(bytes.buffer).first else {
            Issue.record("no removal parsed"); return
        }
        #expect(address.address == IPAddress(string: "10.0.26.2"))
    }

    @Test func anIPv6AddressStillInDuplicateDetectionIsNotUsable() throws {
        var bytes = NetlinkBytes()
        // IFA_F_TENTATIVE (0x40) in ifa_flags; IPv6 sends IFA_ADDRESS only.
        bytes.message(type: 20, payload: NetlinkBytes.address(family: 10, prefix: 64, flags: 0x40, index: 2, attributes: [(1, NetlinkBytes.ipv6)]))
        // The same address settled, flags only in the 32-bit IFA_FLAGS; then a link-local one.
        bytes.message(type: 20, payload: NetlinkBytes.address(family: 10, prefix: 64, index: 2, attributes: [(1, NetlinkBytes.ipv6), (8, [0, 0, 0, 0])]))
        bytes.message(type: 20, payload: NetlinkBytes.address(family: 10, prefix: 64, scope: 253, index: 2,
                                                              attributes: [(1, [0xfe, 0x80] + [UInt8](repeating: 0, count: 13) + [1])]))
        let events = try NetlinkParser.parse(bytes.buffer)
        #expect(events.count == 3)
        let usable = events.map { if case .addressAdded(let address) = $0 { address.isUsable } else { false } }
        #expect(usable == [false, true, false])
        if case .addressAdded(let address) = events[1] { #expect(address.address == IPAddress(string: "2001:db8:208::2")) }
    }

    @Test func severalMessagesInOneDatagramWithLinksRoutesAndOtherTypes() throws {
        var bytes = NetlinkBytes()
        // A name of 5 bytes with its NUL pads the attribute, and so the message, to 4 bytes.
        bytes.message(type: 16, payload: NetlinkBytes.link(index: 4, flags: 0x1 | 0x40 | 0x1000, name: "eth0"))
        bytes.message(type: 16, payload: NetlinkBytes.link(index: 5, flags: 0x1, name: "rmnet0")) // up, no carrier
        bytes.message(type: 17, payload: NetlinkBytes.link(index: 6, flags: 0x41, name: "wg0"))
        bytes.message(type: 24, payload: NetlinkBytes.route(destinationLength: 0, table: 254))
        bytes.message(type: 25, payload: NetlinkBytes.route(destinationLength: 24, table: 254))
        bytes.message(type: 24, payload: NetlinkBytes.route(destinationLength: 32, table: 255)) // the local table
        bytes.message(type: 28, payload: ByteBuffer(bytes: [1, 2, 3, 4])) // RTM_NEWNEIGH: skipped
        bytes.message(type: 3, payload: ByteBuffer(bytes: [0, 0, 0, 0])) // NLMSG_DONE
        let events = try NetlinkParser.parse(bytes.buffer)
        #expect(events == [
            .linkChanged(interfaceIndex: 4, isUp: true), .linkChanged(interfaceIndex: 5, isUp: false),
            .linkChanged(interfaceIndex: 6, isUp: false), .routeChanged(isDefault: true), .routeChanged(isDefault: false),
        ])
    }

    @Test func theLastMessageMayEndWithoutPadding() throws {
        var bytes = NetlinkBytes()
        bytes.message(type: 16, payload: NetlinkBytes.link(index: 1, flags: 0x41, name: "lo"), pad: false)
        var payload = NetlinkBytes.address(family: 2, prefix: 8, scope: 254, index: 1, attributes: [(2, [127, 0, 0, 1])])
        payload.writeBytes([3, 0]) // a trailing part of an attribute header: malformed
        var broken = NetlinkBytes()
        broken.message(type: 20, payload: payload, pad: false)
        #expect(try NetlinkParser.parse(bytes.buffer).count == 1)
        Self.expectMalformed(broken.buffer, "2 bytes left for an attribute header")
    }

    @Test func lengthsThatDoNotFrameRejectTheDatagram() {
        let valid = NetlinkBytes.address(family: 2, prefix: 24, index: 7, attributes: [(2, NetlinkBytes.ipv4)])
        var tooLong = NetlinkBytes()
        tooLong.message(type: 20, payload: valid, length: 200)
        Self.expectMalformed(tooLong.buffer, "nlmsg_len past the datagram")
        var tooShort = NetlinkBytes()
        tooShort.message(type: 20, payload: valid, length: 8)
        Self.expectMalformed(tooShort.buffer, "nlmsg_len below the header")
        Self.expectMalformed(ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), "half a header")

        for (length, comment) in [(UInt16(2), "rta_len below 4"), (UInt16(40), "rta_len past the message")] as [(UInt16, Comment)] {
            var payload = NetlinkBytes.address(family: 2, prefix: 24, index: 7, attributes: [])
            NetlinkBytes.attribute(&payload, type: 2, value: NetlinkBytes.ipv4, length: length)
            var bytes = NetlinkBytes()
            bytes.message(type: 20, payload: payload)
            Self.expectMalformed(bytes.buffer, comment)
        }
        var short = NetlinkBytes()
        short.message(type: 20, payload: ByteBuffer(bytes: [2, 24, 0, 0]))
        Self.expectMalformed(short.buffer, "ifaddrmsg cut to 4 bytes")
        var shortLink = NetlinkBytes()
        shortLink.message(type: 16, payload: ByteBuffer(bytes: [0, 0, 1, 0, 4, 0, 0, 0]))
        Self.expectMalformed(shortLink.buffer, "ifinfomsg cut to 8 bytes")
        var shortRoute = NetlinkBytes()
        shortRoute.message(type: 24, payload: ByteBuffer(bytes: [2, 0, 0, 0]))
        Self.expectMalformed(shortRoute.buffer, "rtmsg cut to 4 bytes")
    }

    @Test func addressesThatDoNotFitTheirFamilyAreRefused() {
        let cases: [(ByteBuffer, Comment)] = [
            (NetlinkBytes.address(family: 2, prefix: 24, index: 7, attributes: [(2, NetlinkBytes.ipv6)]), "16 bytes for IPv4"),
            (NetlinkBytes.address(family: 10, prefix: 64, index: 7, attributes: [(1, NetlinkBytes.ipv4)]), "4 bytes for IPv6"),
            (NetlinkBytes.address(family: 2, prefix: 33, index: 7, attributes: [(2, NetlinkBytes.ipv4)]), "prefix 33 for IPv4"),
            (NetlinkBytes.address(family: 2, prefix: 24, index: 7, attributes: [(3, Array("eth0".utf8) + [0])]), "no address at all"),
            (NetlinkBytes.address(family: 2, prefix: 24, index: 7, attributes: [(2, NetlinkBytes.ipv4), (8, [1, 2])]), "IFA_FLAGS of 2 bytes"),
            (NetlinkBytes.address(family: 2, prefix: 24, index: 7, attributes: [(2, NetlinkBytes.ipv4), (3, [UInt8](repeating: 0x41, count: 40))]),
             "a label longer than IFNAMSIZ"),
        ]
        for (payload, comment) in cases {
            var bytes = NetlinkBytes()
            bytes.message(type: 20, payload: payload)
            Self.expectMalformed(bytes.buffer, comment)
        }
    }

    @Test func anotherAddressFamilyIsSkipped() throws {
        var bytes = NetlinkBytes()
        bytes.message(type: 20, payload: NetlinkBytes.address(family: 12, prefix: 16, index: 9, attributes: [(1, [0xaa, 0xbb])]))
        #expect(try NetlinkParser.parse(bytes.buffer).isEmpty)
    }

    /// Every cut of a valid datagram, and each of its bytes replaced by every value at a few
    /// offsets, either parses or is refused: nothing reads past the end (bounded: 3 messages).
    @Test func cutsAndCorruptionsNeverReadPastTheEnd() {
        var bytes = NetlinkBytes()
        bytes.message(type: 20, payload: NetlinkBytes.address(family: 2, prefix: 24, index: 7, attributes: [
            (1, NetlinkBytes.ipv4), (2, NetlinkBytes.ipv4), (3, Array("eth0".utf8) + [0]),
        ]))
        bytes.message(type: 16, payload: NetlinkBytes.link(index: 4, flags: 0x41, name: "eth0"))
        bytes.message(type: 21, payload: NetlinkBytes.address(family: 10, prefix: 64, index: 2, attributes: [(1, NetlinkBytes.ipv6)]))
        let all = Array(bytes.buffer.readableBytesView)
        var refused = 0
        for cut in 0..<all.count {
            do { _ = try NetlinkParser.parse(ByteBuffer(bytes: all[0..<cut])) } catch { refused += 1 }
        }
        #expect(refused > all.count / 2)
        for offset in [0, 1, 4, 16, 24, 25, 26, 27] {
            for value in 0...255 {
                var corrupted = all
                corrupted[offset] = UInt8(value)
                _ = try? NetlinkParser.parse(ByteBuffer(bytes: corrupted))
            }
        }
    }
}

@Suite struct NetworkChangeBatchTests {
    let start = ContinuousClock.now
    let wifi = InterfaceAddress(interfaceIndex: 4, address: IPAddress(string: "10.0.26.2")!, prefixLength: 24, label: "eth0")
    let cell = InterfaceAddress(interfaceIndex: 5, address: IPAddress(string: "100.64.3.2")!, prefixLength: 24, label: "rmnet0")

    /// The testnet's `mn_shape_roam` in order: the burst is one change, reported 200 ms after
    /// its last event.
    @Test func aMoveFromWiFiToMobileDataIsOneChange() {
        var batch = NetworkChangeBatch()
        batch.add([.addressRemoved(wifi), .routeChanged(isDefault: true)], at: start)
        batch.add([.linkChanged(interfaceIndex: 4, isUp: false)], at: start + .milliseconds(10))
        batch.add([.linkChanged(interfaceIndex: 5, isUp: true)], at: start + .milliseconds(20))
        batch.add([.addressAdded(cell)], at: start + .milliseconds(30))
        batch.add([.routeChanged(isDefault: true)], at: start + .milliseconds(40))
        #expect(batch.take(at: start + .milliseconds(239)) == nil)
        #expect(batch.take(at: start + .milliseconds(240)) == NetworkChange(
            removed: [wifi.address], added: [cell.address], defaultRouteChanged: true, linkChanged: true))
        #expect(batch.deadline == nil)
        #expect(batch.take(at: start + .seconds(5)) == nil)
    }

    @Test func aFlappingInterfaceStillReportsAfterTheLongestWait() {
        var batch = NetworkChangeBatch(quiet: .milliseconds(200), longest: .seconds(1))
        for step in 0..<20 {
            batch.add([.linkChanged(interfaceIndex: 4, isUp: step % 2 == 0)], at: start + .milliseconds(100 * step))
            if step == 9 { #expect(batch.take(at: start + .milliseconds(999)) == nil) }
            if step == 10 {
                #expect(batch.take(at: start + .milliseconds(1000))?.linkChanged == true)
            }
        }
    }

    @Test func anAddressGoneAndBackWithinTheBurstChangesNothing() {
        var batch = NetworkChangeBatch()
        batch.add([.addressRemoved(wifi)], at: start)
        batch.add([.addressAdded(wifi)], at: start + .milliseconds(50))
        #expect(batch.take(at: start + .seconds(1)) == nil)
        batch.add([.addressAdded(cell)], at: start + .seconds(2))
        batch.add([.addressRemoved(cell)], at: start + .seconds(2))
        #expect(batch.take(at: start + .seconds(3)) == nil)
    }

    @Test func loopbackLinkLocalAndTentativeAddressesDoNotCount() {
        var batch = NetworkChangeBatch()
        let loopback = InterfaceAddress(interfaceIndex: 1, address: IPAddress(string: "127.0.0.2")!, prefixLength: 8, scope: .host)
        let linkLocal = InterfaceAddress(interfaceIndex: 4, address: IPAddress(string: "fe80::1")!, prefixLength: 64, scope: .link)
        var tentative = wifi
        tentative.isTentativeOrDeprecated = true
        batch.add([.addressAdded(loopback), .addressRemoved(loopback), .addressAdded(linkLocal), .addressAdded(tentative),
                   .routeChanged(isDefault: false)], at: start)
        #expect(batch.take(at: start + .seconds(1)) == nil)
        batch.lost(at: start + .seconds(2))
        #expect(batch.take(at: start + .seconds(3))?.eventsLost == true)
    }
}
