import NIOCore
import Testing
@testable import STUN

/// Every malformed input is rejected with an error, never a crash.
@Suite struct STUNMalformedTests {
    @Test("truncated, wrong cookie, bad lengths and overrunning attributes are rejected")
    func rejects() throws {
        let valid = STUNVectorTests.sampleRequest
        let bytes = Array(valid.readableBytesView)
        // Every truncation of a valid message fails.
        for length in 0..<bytes.count {
            #expect(throws: STUNError.self) { try STUNMessage(parsing: ByteBuffer(bytes: bytes.prefix(length))) }
        }
        var badCookie = bytes
        badCookie[4] ^= 0xFF
        #expect(throws: STUNError.self) { try STUNMessage(parsing: ByteBuffer(bytes: badCookie)) }
        var badFingerprint = bytes
        badFingerprint[bytes.count - 1] ^= 0x01
        #expect(throws: STUNError.self) { try STUNMessage(parsing: ByteBuffer(bytes: badFingerprint)) }
        var overrun = bytes
        overrun[22] = 0x7F // SOFTWARE length far past the end
        #expect(throws: STUNError.self) { try STUNMessage(parsing: ByteBuffer(bytes: overrun)) }
        var topBits = bytes
        topBits[0] = 0xC0
        #expect(throws: STUNError.self) { try STUNMessage(parsing: ByteBuffer(bytes: topBits)) }
    }

    @Test("bad address attributes are errors")
    func badAddress() throws {
        var message = STUNMessage(type: STUNMessageType(.send, .indication))
        message.append(.xorPeerAddress, bytes: [0, 3, 0, 0, 1, 2, 3, 4]) // family 3
        let parsed = try STUNMessage(parsing: message.encode())
        #expect(throws: STUNError.self) { try parsed.xorAddress(.xorPeerAddress) }
        var short = STUNMessage(type: STUNMessageType(.send, .indication))
        short.append(.xorPeerAddress, bytes: [0, 1, 0, 0, 1, 2])
        #expect(throws: STUNError.self) { try STUNMessage(parsing: short.encode()).xorAddress(.xorPeerAddress) }
    }

    @Test("ChannelData: channel range and length checks")
    func channelData() throws {
        let frame = ChannelData(channel: 0x4001, data: ByteBuffer(bytes: [1, 2, 3])).encode(padded: true)
        #expect(frame.readableBytes == 8)
        let parsed = try ChannelData(parsing: frame)
        #expect(parsed.channel == 0x4001)
        #expect(Array(parsed.data.readableBytesView) == [1, 2, 3])
        #expect(throws: STUNError.self) { try ChannelData(parsing: ByteBuffer(bytes: [0x80, 0, 0, 0])) }
        #expect(throws: STUNError.self) { try ChannelData(parsing: ByteBuffer(bytes: [0x40, 0, 0, 9, 1])) }
        #expect(throws: STUNError.self) { try ChannelData(parsing: ByteBuffer(bytes: [0x40])) }
    }

    @Test("the stream framer cuts frames byte by byte and rejects garbage")
    func framer() throws {
        var request = STUNMessage(type: STUNMessageType(.binding, .request))
        request.append(.software, string: "x")
        var stream = request.encode(fingerprint: true)
        var channel = ChannelData(channel: 0x4000, data: ByteBuffer(bytes: [9, 9, 9, 9, 9])).encode(padded: true)
        stream.writeBuffer(&channel)
        let all = Array(stream.readableBytesView)
        var framer = STUNStreamFramer()
        var pending = ByteBuffer()
        var frames: [STUNFrame] = []
        for byte in all {
            pending.writeInteger(byte)
            while let frame = try framer.next(from: &pending) { frames.append(frame) }
        }
        #expect(frames.count == 2)
        if case .stun(let bytes) = frames[0] { #expect(try STUNMessage(parsing: bytes).software == "x") } else { Issue.record("first frame is not STUN") }
        if case .channelData(let bytes) = frames[1] { #expect(try ChannelData(parsing: bytes).data.readableBytes == 5) } else { Issue.record("second frame is not ChannelData") }
        var garbage = ByteBuffer(bytes: [0xFF, 0xFF, 0, 0])
        #expect(throws: STUNError.self) { try framer.next(from: &garbage) }
        var noCookie = ByteBuffer(bytes: [0, 1, 0, 0, 1, 2, 3, 4])
        #expect(throws: STUNError.self) { try framer.next(from: &noCookie) }
    }
}
