import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A WebSocket upgrade request on a plain socket: the status line and the node's first
/// frame: its opcode (1 text, 8 close), and a close frame's code and reason.
func rawWebSocketUpgrade(port: Int) throws -> (status: String, opcode: UInt8?, closeCode: Int?, reason: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard connected == 0 else { throw TestFailure("connect failed") }
    // Bounds only a failure: the node answers at once, with a challenge or a close.
    var timeout = timeval(tv_sec: 30, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let request = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: meshnode.v1\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    /// The first frame after the headers once enough of it is in: its opcode and, for a
    /// close frame (always under 126 bytes), all of it.
    func firstFrame() -> (headerEnd: Int, frame: [UInt8])? {
        guard let end = received.indices.first(where: { received[$0...].starts(with: Array("\r\n\r\n".utf8)) }) else { return nil }
        let frame = Array(received[(end + 4)...])
        guard frame.count >= 2, frame.count >= 2 + Int(frame[1] & 0x7f) else { return nil }
        return (end, frame)
    }
    while firstFrame() == nil {
        let count = recv(fd, &buffer, buffer.count, 0)
        guard count > 0 else { break }
        received += buffer[0..<count]
    }
    let text = String(decoding: received, as: UTF8.self)
    let status = String(text.prefix { $0 != "\r" })
    guard let (_, frame) = firstFrame() else { return (status, nil, nil, "") }
    let opcode = frame[0] & 0x0f
    guard opcode == 0x8, frame.count >= 4 else { return (status, opcode, nil, "") }
    let length = Int(frame[1] & 0x7f)
    let code = Int(frame[2]) << 8 | Int(frame[3])
    let reason = String(decoding: frame[4..<min(frame.count, 2 + length)], as: UTF8.self)
    return (status, opcode, code, reason)
}
