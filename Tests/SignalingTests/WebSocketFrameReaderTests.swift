import NIOCore
import Testing
@testable import Signaling

/// Issue 17: the node reads a client's WebSocket frames itself (RFC 6455 §5). Frames arrive in
/// any split over reads; each rule a client can break fails the connection with its close code
/// (§7.4.1), and the limits hold before a frame's payload has arrived.
@Suite struct WebSocketFrameReaderTests {
    typealias Reader = WebSocketFrameReader

    /// A client's frame: masked with a fixed key unless `masked` is false.
    static func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0,
                      length64: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv | opcode]
        let mask: UInt8 = masked ? 0x80 : 0
        if length64 {
            bytes.append(mask | 127)
            bytes += withUnsafeBytes(of: UInt64(payload.count).bigEndian, Array.init)
        } else if payload.count < 126 {
            bytes.append(mask | UInt8(payload.count))
        } else {
            bytes += [mask | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        }
        guard masked else { return bytes + payload }
        let key: [UInt8] = [0x37, 0xfa, 0x21, 0x3d]
        return bytes + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    }

    /// What `reader` makes of `chunks`, read one after the other.
    static func read(_ chunks: [[UInt8]], reader: inout Reader) -> (messages: [Reader.Message], violation: Reader.Violation?) {
        var messages: [Reader.Message] = []
        for chunk in chunks {
            do {
                try reader.read(ByteBuffer(bytes: chunk)) { messages.append($0) }
            } catch {
                return (messages, error)
            }
        }
        return (messages, nil)
    }

    static func read(_ bytes: [UInt8], maxMessage: Int = 1 << 20, maxFragments: Int = 256) -> (messages: [Reader.Message], violation: Reader.Violation?) {
        var reader = Reader(maxMessage: maxMessage, maxFragments: maxFragments)
        return read([bytes], reader: &reader)
    }

    @Test("frames split at every byte, and many in one read, give the same messages; nothing is held between frames")
    func anySplit() {
        let text = String(repeating: "héllo ", count: 40)  // 280 bytes: a 16-bit length
        let stream = Self.frame(0x1, Array(text.utf8)) + Self.frame(0x9, Array("p".utf8)) + Self.frame(0x1, Array("{}".utf8))
            + Self.frame(0x2, [1, 2, 3]) + Self.frame(0x8, [0x03, 0xE8])
        let expected: [Reader.Message] = [.text(text), .ping(ByteBuffer(string: "p")), .text("{}"), .binary, .close(code: 1000)]
        #expect(Self.read(stream).messages == expected)
        var reader = Reader(maxMessage: 1 << 20, maxFragments: 256)
        let byByte = Self.read(stream.map { [$0] }, reader: &reader)
        #expect(byByte.messages == expected && byByte.violation == nil)
        #expect(reader.heldBytes == 0)
        for cut in 1..<stream.count {
            var reader = Reader(maxMessage: 1 << 20, maxFragments: 256)
            #expect(Self.read([Array(stream[..<cut]), Array(stream[cut...])], reader: &reader).messages == expected, "cut at \(cut)")
        }
    }

    @Test("§5.4: a message in fragments is one message, with a Ping between its fragments answered first")
    func fragments() {
        let stream = Self.frame(0x1, Array("{\"ty".utf8), fin: false) + Self.frame(0x9, [7])
            + Self.frame(0x0, Array("pe\":".utf8), fin: false) + Self.frame(0x0, Array("1}".utf8))
        #expect(Self.read(stream).messages == [.ping(ByteBuffer(bytes: [7])), .text("{\"type\":1}")])
    }

    @Test("invalid UTF-8 in a text message is repaired, not refused (as before: the hub answers bad JSON)")
    func invalidUTF8() {
        #expect(Self.read(Self.frame(0x1, [0x41, 0xFF, 0x42])).messages == [.text("A\u{FFFD}B")])
    }

    @Test("a client that breaks a rule of RFC 6455 gets 1002, with a reason", arguments: [
        ("unmasked (§5.1)", WebSocketFrameReaderTests.frame(0x1, [1], masked: false)),
        ("reserved bits (§5.2)", WebSocketFrameReaderTests.frame(0x1, [1], rsv: 0x40)),
        ("unknown opcode", WebSocketFrameReaderTests.frame(0x3, [1])),
        ("fragmented control frame (§5.5)", WebSocketFrameReaderTests.frame(0x9, [1], fin: false)),
        ("control frame over 125 bytes (§5.5)", WebSocketFrameReaderTests.frame(0x9, [UInt8](repeating: 1, count: 126))),
        ("continuation without a message (§5.4)", WebSocketFrameReaderTests.frame(0x0, [1])),
        ("a message inside another's fragments (§5.4)", WebSocketFrameReaderTests.frame(0x1, [1], fin: false) + WebSocketFrameReaderTests.frame(0x1, [2])),
        ("Close with a 1-byte body (§5.5.1)", WebSocketFrameReaderTests.frame(0x8, [3])),
        ("Close with 1005, which is never sent (§7.4.1)", WebSocketFrameReaderTests.frame(0x8, [0x03, 0xED])),
        ("Close with 999, under the range (§7.4.2)", WebSocketFrameReaderTests.frame(0x8, [0x03, 0xE7])),
        ("Close with 2000, unassigned (§7.4.2)", WebSocketFrameReaderTests.frame(0x8, [0x07, 0xD0])),
        ("64-bit length with its high bit set (§5.2)", [0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1]),
    ])
    func protocolErrors(_ rule: String, _ bytes: [UInt8]) {
        let result = Self.read(bytes)
        #expect(result.violation?.code == 1002, "\(rule)")
        #expect(result.violation.map { !$0.reason.isEmpty } ?? false)
    }

    @Test("1009 for a frame announced over the limit (before its payload), for fragments adding up over it, and for too many fragments")
    func limits() {
        // Only a header announcing 2 MiB: refused at once.
        let header: [UInt8] = [0x82, 0xFF] + withUnsafeBytes(of: UInt64(2 << 20).bigEndian, Array.init) + [0, 0, 0, 0]
        #expect(Self.read(header).violation?.code == 1009)
        let fragments = Self.frame(0x1, [UInt8](repeating: 0x61, count: 60), fin: false) + Self.frame(0x0, [UInt8](repeating: 0x61, count: 60))
        #expect(Self.read(fragments, maxMessage: 100).violation?.code == 1009)
        #expect(Self.read(fragments, maxMessage: 120).messages == [.text(String(repeating: "a", count: 120))])
        let four = Self.frame(0x1, [0x61], fin: false) + Self.frame(0x0, [0x61], fin: false) + Self.frame(0x0, [0x61], fin: false) + Self.frame(0x0, [0x61])
        #expect(Self.read(four, maxFragments: 3).violation?.code == 1009)
        #expect(Self.read(four, maxFragments: 4).messages == [.text("aaaa")])
    }

    /// An attacker's header announcing a frame within the limit costs the node no more than
    /// 64 KiB until the bytes come: 20,000 connections doing so must not take 20 GiB.
    @Test("a header alone does not make the reader set aside the frame's whole size")
    func headerAloneReservesLittle() {
        var reader = Reader(maxMessage: 1 << 20, maxFragments: 256)
        let header: [UInt8] = [0x81, 0xFF] + withUnsafeBytes(of: UInt64(1 << 20).bigEndian, Array.init) + [1, 2, 3, 4]
        #expect(Self.read([header], reader: &reader).violation == nil)
        #expect(reader.heldBytes == header.count)
        #expect(reader.reservedBytes <= Reader.reserveLimit)
    }

    @Test("a Close with a code an endpoint may send is read with its code", arguments: [1000, 1001, 1011, 1013, 3000, 4999] as [UInt16])
    func sendableCloseCodes(_ code: UInt16) {
        #expect(Self.read(Self.frame(0x8, [UInt8(code >> 8), UInt8(code & 0xff)])).messages == [.close(code: code)])
    }

    @Test("a frame with a 64-bit length for a small payload is read (§5.2's shortest form is the sender's duty)")
    func longFormLength() {
        #expect(Self.read(Self.frame(0x1, Array("ok".utf8), length64: true)).messages == [.text("ok")])
    }
}
