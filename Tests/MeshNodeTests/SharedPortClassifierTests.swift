import NIOCore
import STUN
import Testing
@testable import MeshNode

/// The first bytes inside TLS on the shared port (`single-port`): STUN (RFC 8489 §6) goes to
/// TURN, an HTTP request line (RFC 9112 §3) to the web server, anything else is closed.
@Suite struct SharedPortClassifierTests {
    func verdict(_ bytes: [UInt8]) -> SharedPortClassifier.Verdict {
        SharedPortClassifier.classify(ByteBuffer(bytes: bytes))
    }

    @Test("a STUN Allocate request is TURN; eight bytes decide")
    func stun() {
        let buffer = STUNMessage(type: STUNMessageType(.allocate, .request)).encode()
        let bytes = Array(buffer.readableBytesView)
        #expect(verdict(bytes) == .turn)
        #expect(verdict(Array(bytes.prefix(8))) == .turn)
        #expect(verdict(Array(bytes.prefix(7))) == .needMore)
        #expect(verdict([]) == .needMore)
    }

    @Test("STUN's shape without the magic cookie is neither")
    func noCookie() {
        #expect(verdict([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x43]) == .neither)
    }

    @Test("request lines of HTTP methods are HTTP; a method is decided at its space", arguments: ["GET", "POST", "HEAD", "OPTIONS", "CONNECT", "PUT"])
    func http(method: String) {
        #expect(verdict(Array("\(method) / HTTP/1.1\r\n".utf8)) == .http)
        #expect(verdict(Array(method.utf8)) == .needMore)
    }

    @Test("ChannelData first, lower case, a leading space, a token of eight letters, binary: neither")
    func neither() {
        // ChannelData on channel 0x4000 ("@" and a NUL): a fresh connection has bound no channel.
        #expect(verdict([0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]) == .neither)
        #expect(verdict(Array("get / HTTP/1.1".utf8)) == .neither)
        #expect(verdict(Array(" GET / HTTP/1.1".utf8)) == .neither)
        #expect(verdict(Array("ABCDEFGH /".utf8)) == .neither)
        #expect(verdict([0xFF, 0xFE]) == .neither)
        #expect(verdict([0x16, 0x03, 0x01, 0x00, 0x10, 0x01, 0x00, 0x00]) == .neither)
    }
}
