import Foundation
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 17 item 1: `/ws` served on plain SwiftNIO handlers in the node's HTTP pipeline
/// (SignalingHTTPChannel, SignalingConnectionHandler). The WebSocket protocol as RFC 6455 has
/// it, over a raw socket against a real node: control frames, fragments, the closing
/// handshake, the frame limit, and HTTP around the upgrade.
@Suite(.timeLimit(.minutes(2))) struct LeanTransportTests {
    @Test("RFC 6455 §5.5: a Ping gets a Pong with its data; a fragmented message is one message; a Close is echoed and TCP closes")
    func controlFramesAndFragments() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let socket = try RawWebSocket(port: node.httpPort)
        #expect(try socket.nextFrame().opcode == 0x1)
        try socket.sendFrame(opcode: 0x9, payload: Array("are you there".utf8))
        let pong = try socket.nextPayload()
        #expect(pong.opcode == 0xA && pong.payload == Array("are you there".utf8))
        // The protocol's ping in three fragments (RFC 6455 §5.4): answered as one message.
        let ping = Array(#"{"type":"ping","id":"frag","from":"","to":"@node","body":{}}"#.utf8)
        try socket.sendFrame(opcode: 0x1, payload: Array(ping[0..<10]), fin: false)
        try socket.sendFrame(opcode: 0x0, payload: Array(ping[10..<30]), fin: false)
        try socket.sendFrame(opcode: 0x0, payload: Array(ping[30...]), fin: true)
        let answer = try socket.nextPayload()
        #expect(answer.opcode == 0x1)
        #expect(String(decoding: answer.payload, as: UTF8.self).contains(#""pong""#))
        try socket.sendFrame(opcode: 0x8, payload: [0x03, 0xE8] + Array("bye".utf8))
        let close = try socket.nextFrame()
        #expect(close.opcode == 0x8 && close.closeCode == 1000)
        #expect(socket.isClosedByPeer())
    }

    @Test("a frame over the 1 MiB limit closes the connection with 1009 Message Too Big (RFC 6455 §7.4.1) and the node stays up")
    func oversizedFrame() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let socket = try RawWebSocket(port: node.httpPort)
        #expect(try socket.nextFrame().opcode == 0x1)
        // Only the header: a 2 MiB text frame announced (64-bit length), masked.
        var header: [UInt8] = [0x81, 0x80 | 127]
        header += withUnsafeBytes(of: UInt64(2 << 20).bigEndian, Array.init)
        header += [0, 0, 0, 0]
        try socket.sendBytes(header)
        let close = try socket.nextFrame()
        #expect(close.opcode == 0x8 && close.closeCode == 1009)
        let again = try RawWebSocket(port: node.httpPort)
        #expect(try again.nextFrame().opcode == 0x1)
    }

    @Test("a frame that breaks RFC 6455 (unmasked, §5.1) fails the connection with 1002 and its reason; the node stays up")
    func protocolError() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let socket = try RawWebSocket(port: node.httpPort)
        #expect(try socket.nextFrame().opcode == 0x1)
        try socket.sendBytes([0x81, 0x02] + Array("{}".utf8))
        let close = try socket.nextPayload()
        #expect(close.opcode == 0x8 && Array(close.payload.prefix(2)) == [0x03, 0xEA])
        #expect(String(decoding: close.payload.dropFirst(2), as: UTF8.self).contains("unmasked"))
        #expect(socket.isClosedByPeer())
        let again = try RawWebSocket(port: node.httpPort)
        #expect(try again.nextFrame().opcode == 0x1)
    }

    @Test("HTTP around /ws: another path's upgrade and /ws without meshnode.v1 get 400, plain GET /ws 426, a late upgrade on a kept-alive connection 307")
    func httpAroundTheUpgrade() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let port = node.httpPort
        let upgrade = LoopbackSocket.upgradeRequest(port: port)
        #expect(try Self.exchange(port: port, upgrade.replacingOccurrences(of: "GET /ws ", with: "GET /other ")).hasPrefix("HTTP/1.1 400"))
        #expect(try Self.exchange(port: port, upgrade.replacingOccurrences(of: "Sec-WebSocket-Protocol: meshnode.v1\r\n", with: "")).hasPrefix("HTTP/1.1 400"))
        #expect(try Self.exchange(port: port, "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n").hasPrefix("HTTP/1.1 426"))
        // The upgrader sees a connection's first request only: a second that asks for a
        // WebSocket is sent to a fresh connection.
        let both = try Self.exchange(port: port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\r\n" + upgrade, until: "HTTP/1.1 307")
        #expect(both.hasPrefix("HTTP/1.1 200"))
        #expect(both.contains("HTTP/1.1 307"))
    }

    /// The attacker sends frames as fast as it can and never reads: every frame gets an answer
    /// (a pong, or `rate-limited` past the budget), and the answers would pile up in the node.
    @Test("a client that never reads is closed once 4,096 frames wait for its socket, and the node stays up")
    func clientThatNeverReads() async throws {
        // A long heartbeat: the silence rule (the node reads nothing from a stalled socket)
        // must not be what cuts the attacker here.
        let node = try await MeshNodeServer(["--heartbeat", "600"], bind: ["127.0.0.1"])
        defer { node.stop() }
        let socket = try RawWebSocket(port: node.httpPort)
        // A small receive buffer, so the node's answers pile up soon; not smaller than a
        // loopback segment (64 KiB). With 4 KiB the node's segments were pruned on arrival
        // and, on a loaded machine, our frames stopped flowing: the node had read all it got
        // (its receive queue empty, 132 KB in all) while 4 MB waited in our send queue past
        // the 20 s timeout below.
        var small: Int32 = 65_536
        setsockopt(socket.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(socket.fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let ping = Array(#"{"type":"ping","id":"x","from":"","to":"@node","body":{}}"#.utf8)
        var frame: [UInt8] = [0x81, 0x80 | UInt8(ping.count), 0, 0, 0, 0] + ping
        // 64 frames per send: the node's answers (about 200 bytes each) outgrow what the
        // sockets hold (a few MB) long before 300,000 frames.
        frame = Array([[UInt8]](repeating: frame, count: 64).joined())
        var sent = 0
        var failure: Int32 = 0
        let started = ContinuousClock.now
        var offset = 0
        while sent < 300_000 {
            let count = frame.withUnsafeBytes { send(socket.fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else {
                failure = errno
                break
            }
            offset += count
            if offset == frame.count {
                offset = 0
                sent += 64
            }
        }
        print("figure: a client that never reads was cut after \(sent) frames sent, \(ContinuousClock.now - started)")
        #expect(sent < 300_000, "the node kept taking frames from a client that reads nothing")
        // Cut by the node (reset or broken pipe), not a send that timed out (EAGAIN: stalled).
        #expect(failure == ECONNRESET || failure == EPIPE, "send failed with errno \(failure)")
        let again = try RawWebSocket(port: node.httpPort)
        #expect(try again.nextFrame().opcode == 0x1)
    }

    /// Sends `request` and reads until `marker` (or the end of the connection).
    static func exchange(port: Int, _ request: String, until marker: String = "\r\n\r\n") throws -> String {
        guard let fd = LoopbackSocket.connect(port: port) else { throw TestFailure("connect failed") }
        defer { close(fd) }
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains(marker) {
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}

extension RawWebSocket {
    /// A masked client frame (RFC 6455 §5.3), with a random masking key.
    func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true) throws {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        }
        let key = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += key
        frame += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        try sendBytes(frame)
    }

    func sendBytes(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == bytes.count else { throw TestFailure("send failed") }
    }

    /// The next frame with its payload (frames from the node are not masked).
    func nextPayload() throws -> (opcode: UInt8, payload: [UInt8]) {
        var header = [UInt8](repeating: 0, count: 2)
        try readExactly(&header)
        var length = Int(header[1] & 0x7f)
        if length == 126 {
            var extended = [UInt8](repeating: 0, count: 2)
            try readExactly(&extended)
            length = Int(extended[0]) << 8 | Int(extended[1])
        }
        var payload = [UInt8](repeating: 0, count: length)
        try readExactly(&payload)
        return (header[0] & 0x0f, payload)
    }

    /// Whether the node closed the TCP connection (a read returns 0 within the socket's timeout).
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }

    private func readExactly(_ bytes: inout [UInt8]) throws {
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + filled, $0.count - filled, 0) }
            guard count > 0 else { throw TestFailure("the node closed the socket") }
            filled += count
        }
    }
}
