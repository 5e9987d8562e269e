import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A WebSocket upgrade request on a plain socket: the status line and the node's first
/// frame: its opcode (1 text, 8 close), and a close frame's code and reason.
func rawWebSocketUpgrade(port: Int) throws -> (status: String, opcode: UInt8?, closeCode: Int?, reason: String) {
    guard let fd = LoopbackSocket.connect(port: port) else { throw TestFailure("connect failed") }
    defer { close(fd) }
    let request = LoopbackSocket.upgradeRequest(port: port)
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
