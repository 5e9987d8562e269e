import NIOCore
import Testing
import TestSupport
@testable import STUN

/// RFC 5769 test vectors (§2.1–§2.4).
@Suite struct STUNVectorTests {
    static let sampleRequest = hexBuffer("""
        000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff
        80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249
        c1b571a280280004e57a3bcf
        """)
    static let ipv4Response = hexBuffer("""
        0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147e112a643
        000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96
        """)
    static let ipv6Response = hexBuffer("""
        010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a1470113a9fa
        a5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c
        """)
    static let longTermRequest = hexBuffer("""
        000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b90000
        0015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e6f726700
        00080014f67024656dd64a3e02b8e0712e85c9a28ca89666
        """)
    static let shortTermPassword = Array("VOkJxbRl1RmTxUk/WvJxBt".utf8)

    @Test("§2.1 sample request: attributes, integrity and fingerprint")
    func sampleRequest() throws {
        let message = try STUNMessage(parsing: Self.sampleRequest)
        #expect(message.type == STUNMessageType(.binding, .request))
        #expect(message.software == "STUN test client")
        #expect(message.username == "evtj:h6vY")
        #expect(try message.uint32(.priority) == 0x6E00_01FF)
        #expect(try message.uint64(.iceControlled) == 0x932F_F9B1_5126_3B36)
        #expect(message.hasFingerprint)
        #expect(message.verifyIntegrity(key: Self.shortTermPassword))
        #expect(!message.verifyIntegrity(key: Array("wrong".utf8)))
    }

    @Test("§2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853")
    func ipv4Response() throws {
        let message = try STUNMessage(parsing: Self.ipv4Response)
        #expect(message.type == STUNMessageType(.binding, .successResponse))
        let mapped = try #require(try message.xorAddress(.xorMappedAddress))
        #expect(mapped.ipAddress == "192.0.2.1")
        #expect(mapped.port == 32853)
        #expect(message.verifyIntegrity(key: Self.shortTermPassword))
    }

    @Test("§2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853")
    func ipv6Response() throws {
        let message = try STUNMessage(parsing: Self.ipv6Response)
        let mapped = try #require(try message.xorAddress(.xorMappedAddress))
        #expect(IPAddress(mapped) == IPAddress(string: "2001:db8:1234:5678:11:2233:4455:6677"))
        #expect(mapped.port == 32853)
        #expect(message.verifyIntegrity(key: Self.shortTermPassword))
    }

    @Test("§2.4 long-term credentials: key = MD5(username:realm:password)")
    func longTermRequest() throws {
        let message = try STUNMessage(parsing: Self.longTermRequest)
        #expect(message.username == "マトリックス")
        #expect(message.realm == "example.org")
        #expect(message.nonce == "f//499k954d6OL34oL9FSTvy64sA")
        let key = LongTermCredentials.key(username: "マトリックス", realm: "example.org", password: "TheMatrIX")
        #expect(message.verifyIntegrity(key: key))
    }

    @Test("encoding the §2.1 request again gives the same bytes")
    func encodeMatchesVector() throws {
        let parsed = try STUNMessage(parsing: Self.sampleRequest)
        var rebuilt = STUNMessage(type: parsed.type, transactionID: parsed.transactionID)
        rebuilt.append(.software, string: "STUN test client")
        rebuilt.append(.priority, uint32: 0x6E00_01FF)
        rebuilt.append(.iceControlled, uint64: 0x932F_F9B1_5126_3B36)
        rebuilt.append(.username, string: "evtj:h6vY")
        let encoded = rebuilt.encode(integrity: Self.shortTermPassword, fingerprint: true)
        // The RFC pads USERNAME with spaces; RFC 8489 pads with zeros. Compare with that difference.
        var expected = Self.sampleRequest.getBytes(at: 0, length: Self.sampleRequest.readableBytes)!
        expected.replaceSubrange(73..<76, with: [0, 0, 0])
        let reparsed = try STUNMessage(parsing: encoded)
        #expect(reparsed.verifyIntegrity(key: Self.shortTermPassword))
        #expect(encoded.readableBytes == expected.count)
        #expect(Array(encoded.readableBytesView.prefix(76)) == Array(expected.prefix(76)))
    }

    @Test("XOR addresses round-trip for IPv4 and IPv6")
    func addressRoundTrip() throws {
        for text in ["203.0.113.7", "2001:db8::1"] {
            var message = STUNMessage(type: STUNMessageType(.allocate, .successResponse))
            let address = try SocketAddress(ipAddress: text, port: 49_152)
            message.appendXORAddress(.xorRelayedAddress, address)
            message.appendAddress(.otherAddress, address)
            let parsed = try STUNMessage(parsing: message.encode(fingerprint: true))
            #expect(try parsed.xorAddress(.xorRelayedAddress) == address)
            #expect(try parsed.address(.otherAddress) == address)
        }
    }

    @Test("message types pack method and class as RFC 8489 §5 figure 3")
    func messageTypes() {
        #expect(STUNMessageType(.binding, .request).wire == 0x0001)
        #expect(STUNMessageType(.binding, .successResponse).wire == 0x0101)
        #expect(STUNMessageType(.binding, .errorResponse).wire == 0x0111)
        #expect(STUNMessageType(.allocate, .request).wire == 0x0003)
        #expect(STUNMessageType(.data, .indication).wire == 0x0017)
        #expect(STUNMessageType(.send, .indication).wire == 0x0016)
        #expect(STUNMessageType(.connectionAttempt, .indication).wire == 0x001C)
        for wire: UInt16 in [0x0001, 0x0111, 0x0113, 0x0017, 0x000B] {
            #expect(STUNMessageType(wire: wire)?.wire == wire)
        }
    }

    @Test("error codes carry class, number and reason")
    func errorCode() throws {
        var message = STUNMessage(type: STUNMessageType(.allocate, .errorResponse))
        message.appendErrorCode(.staleNonce)
        let parsed = try STUNMessage(parsing: message.encode())
        let error = try #require(try parsed.errorCode())
        #expect(error.code == .staleNonce)
        #expect(error.reason == "Stale Nonce")
    }
}
